// One classification of every failure, used by boot's bounded retry, token, run and the API.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HalError } from '../hal/errors';
import { EreceiptError, exitStatusOf, isEreceiptError, isTransient, type ErrorCode } from '../src/errors';
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
  ['ERR_CLOSED', 'needs-a-person'],
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

it.each([
  ['a permission refused on the EEPROM', new EreceiptError('ERR_HAL_UNAVAILABLE', 'permission denied reading the EEPROM /sys/x', { lasting: true })],
  ['the serial driver missing from the install', new EreceiptError('ERR_HAL_UNAVAILABLE', 'the serial driver cannot be loaded', { lasting: true })],
])('a lasting HAL failure needs a person, not a retry: %s', (_name, error) => {
  expect(classifyFailure(error)).toBe('needs-a-person');
  expect(isTransient(error)).toBe(false);
  expect(error.exitStatus).toBe(69);
});

it('the remedy is joined to the message, and kept apart', () => {
  const error = new EreceiptError('ERR_SERVICE_UNAVAILABLE', 'identity service is busy (HTTP 503)', { remedy: 'try again later' });
  expect(error).toMatchObject({ message: 'identity service is busy (HTTP 503): try again later', what: 'identity service is busy (HTTP 503)', remedy: 'try again later' });
  expect(new EreceiptError('ERR_CONFIG', 'bad')).toMatchObject({ message: 'bad', what: 'bad', remedy: undefined });
});

describe('the HAL is the bottom layer', () => {
  it('hal/ imports nothing from src/', () => {
    const dir = join(__dirname, '..', 'hal');
    const offenders = readdirSync(dir)
      .filter((f) => f.endsWith('.ts'))
      .filter((f) => /from '\.\.\/src\//.test(readFileSync(join(dir, f), 'utf8')));
    expect(offenders).toEqual([]);
  });

  it("its errors are the module's: same brand, instanceof, exit status and class", () => {
    const busy = new HalError('ERR_HAL_UNAVAILABLE', 'serial device /dev/ttyS1 is in use by another process', { remedy: 'stop it, or wait for it to finish' });
    expect(busy).toBeInstanceOf(EreceiptError);
    expect(isEreceiptError(busy)).toBe(true);
    expect(busy).toMatchObject({ code: 'ERR_HAL_UNAVAILABLE', exitStatus: 69, what: 'serial device /dev/ttyS1 is in use by another process', message: 'serial device /dev/ttyS1 is in use by another process: stop it, or wait for it to finish' });
    expect(classifyFailure(busy)).toBe('retry-soon');
    const garbage = new HalError('ERR_HAL_BAD_DATA', 'EEPROM x fails its CRC');
    expect(garbage.exitStatus).toBe(65);
    expect(classifyFailure(garbage)).toBe('retry-slowly');
    expect(new TypeError('x')).not.toBeInstanceOf(EreceiptError);
  });
});
