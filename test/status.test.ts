// `status` exits 0 only while a valid token is held; otherwise its status says why,
// for monitoring. whyNoToken is pure: a report in, the error (or none) out.
import { whyNoToken, type StatusReport } from '../src/commands/status';

function report(token: StatusReport['token']['state'], credentials: StatusReport['credentials']['state'], lastErrorCode?: string, running = false): StatusReport {
  return {
    config: '/etc/ereceipt-auth/config.json',
    identityUrl: 'https://id.eta.gov.eg',
    device: { driver: 'sim', osVersion: 'Debian 12' },
    credentials: { file: '/var/lib/ereceipt-auth/credentials', state: credentials },
    token: { file: '/run/ereceipt-auth/token.json', state: token, ...(token === 'expired' ? { expiresAt: '2026-11-29T10:00:00.000Z' } : {}) },
    proxy: { used: false, reason: 'none set' },
    ...(lastErrorCode ? { lastError: { code: lastErrorCode, message: 'something', at: '2026-11-29T10:00:00.000Z' } } : {}),
    ...(running ? { service: { running: true, pid: 42, startedAt: '2026-11-29T09:00:00.000Z', rejected: false, requests: 3 } } : {}),
  };
}

it.each([
  ['a valid token', report('valid', 'ok', 'ERR_SERVICE_UNAVAILABLE'), undefined, undefined],
  ['a valid token, whatever the credentials now', report('valid', 'unreadable'), undefined, undefined],
  ['not provisioned', report('absent', 'absent'), 78, /^there is no token: the terminal is not provisioned: run "ereceipt-auth provision"$/],
  ['credentials unreadable', report('absent', 'unreadable'), 78, /^there is no token: the credentials file cannot be used here: re-run provisioning$/],
  ['rejected', report('absent', 'ok', 'ERR_CREDENTIALS_REJECTED'), 77, /rejected the credentials/],
  ['expired after a rejection', report('expired', 'ok', 'ERR_CREDENTIALS_REJECTED'), 77, /^the token expired at 2026-11-29T10:00:00.000Z: the identity service rejected/],
  ['the service failed', report('absent', 'ok', 'ERR_SERVICE_UNAVAILABLE'), 75, /^there is no token, the identity service could not be reached or failed \(see last error\): run "ereceipt-auth boot", or start the service$/],
  ['the service failed while run keeps trying', report('expired', 'ok', 'ERR_SERVICE_UNAVAILABLE', true), 75, /: the service keeps trying$/],
  ['nothing has tried yet', report('absent', 'ok'), 75, /^there is no token: run "ereceipt-auth boot", or start the service$/],
  ['the device failed last', report('absent', 'unchecked', 'ERR_HAL_UNAVAILABLE'), 69, /^there is no token: the last login failed \(see last error\)$/],
  ['bad data from the device', report('absent', 'unchecked', 'ERR_HAL_BAD_DATA'), 65, /the last login failed/],
  ['a token file that could not be written', report('absent', 'ok', 'ERR_FILE_WRITE'), 73, /the last login failed/],
  ['an internal error last', report('absent', 'ok', 'ERR_INTERNAL'), 70, /the last login failed/],
  ['an unknown code in the state file', report('absent', 'ok', 'ERR_FROM_THE_FUTURE'), 75, /^there is no token, the identity service/],
  ['a code that is a property of every object', report('absent', 'ok', 'toString'), 75, /^there is no token, the identity service/],
] as const)('%s', (_name, r, exitStatus, message) => {
  const error = whyNoToken(r);
  if (exitStatus === undefined) {
    expect(error).toBeUndefined();
    return;
  }
  expect(error?.exitStatus).toBe(exitStatus);
  expect(error?.message).toMatch(message as RegExp);
});
