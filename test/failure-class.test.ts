// One classification of every failure, used by boot's bounded retry, token, run and the API.
import { EreceiptError, exitStatusOf, isTransient, type ErrorCode } from '../src/errors';
import { classifyFailure, type FailureClass } from '../src/failure-class';

const rows: Array<[ErrorCode, FailureClass]> = [
  ['ERR_SERVICE_UNAVAILABLE', 'retry-soon'],
  ['ERR_HAL_UNAVAILABLE', 'retry-soon'],
  ['ERR_HAL_BAD_DATA', 'retry-slowly'],
  ['ERR_FILE_READ', 'retry-slowly'],
  ['ERR_FILE_WRITE', 'retry-slowly'],
  ['ERR_CREDENTIALS_REJECTED', 'needs-a-person'],
  ['ERR_NOT_PROVISIONED', 'needs-a-person'],
  ['ERR_CREDENTIALS_UNREADABLE', 'needs-a-person'],
  ['ERR_CONFIG', 'needs-a-person'],
  ['ERR_USAGE', 'needs-a-person'],
  ['ERR_INTERRUPTED', 'needs-a-person'],
  ['ERR_INTERNAL', 'bug'],
];

it('covers every error code there is', () => {
  expect(rows.map(([code]) => code).sort()).toEqual(Object.keys(exitStatusOf).sort());
});

it.each(rows)('%s: %s', (code, expected) => {
  const error = new EreceiptError(code, 'x');
  expect(classifyFailure(error)).toBe(expected);
  // isTransient, the API's word for it, agrees.
  expect(isTransient(error)).toBe(expected === 'retry-soon');
});

it.each([
  ['a TypeError', new TypeError('x')],
  ['a string', 'boom'],
  ['undefined', undefined],
  ['an object with an unknown code', Object.assign(new Error('x'), { code: 'ERR_SOMETHING' })],
])('anything else is a bug: %s', (_name, error) => {
  expect(classifyFailure(error)).toBe('bug');
  expect(isTransient(error)).toBe(false);
});
