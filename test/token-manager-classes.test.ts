// The token manager acts on src/failure-class.ts: each class gets its own retry
// schedule, on simulated time. The random source is fixed at its midpoint, so each
// wait is half its ceiling and known exactly.
import { EreceiptError, type ErrorCode } from '../src/errors';
import type { TokenSet } from '../src/identity-client';
import { createLogger } from '../src/log';
import { createTokenManager } from '../src/token-manager';
import { createVirtualClock } from './helpers/virtual-clock';

const token = (): TokenSet => ({ accessToken: 'header.payload.signature', tokenType: 'Bearer', expiresIn: 3600, claims: {} });

/** The waits between the first four tries of a login that fails with `failure`. */
async function waits(failure: () => unknown): Promise<{ gaps: number[]; log: string[] }> {
  const clock = createVirtualClock(Date.UTC(2026, 10, 28), () => 0.5);
  const tries: number[] = [];
  const log: string[] = [];
  const m = createTokenManager({
    login: async () => {
      tries.push(clock.monotonic());
      throw failure();
    },
    clocks: clock,
    log: createLogger({ write: (line) => void log.push(line) }),
  });
  m.start();
  for (let i = 0; i < 200 && tries.length < 4; i++) await clock.advance(60_000);
  await m.close();
  return { gaps: tries.slice(1, 4).map((at, i) => at - (tries[i] as number)), log };
}

const coded = (code: ErrorCode, message: string) => () => new EreceiptError(code, message);

it('retry soon (the service, a busy UART): 0.5, 1, 2 s', async () => {
  expect((await waits(coded('ERR_SERVICE_UNAVAILABLE', 'identity service is busy (HTTP 503): try again later'))).gaps).toEqual([500, 1000, 2000]);
  expect((await waits(coded('ERR_HAL_UNAVAILABLE', 'serial port /dev/ttyS1 is held by another process'))).gaps).toEqual([500, 1000, 2000]);
});

it('retry slowly (garbage from the co-processor, a file that could not be read): 15, 30, 60 s', async () => {
  expect((await waits(coded('ERR_HAL_BAD_DATA', 'the co-processor answered garbage'))).gaps).toEqual([15_000, 30_000, 60_000]);
  expect((await waits(coded('ERR_FILE_READ', 'credentials file cannot be read (EIO)'))).gaps).toEqual([15_000, 30_000, 60_000]);
});

it('needs a person: about every 15 minutes, logged once', async () => {
  const { gaps, log } = await waits(coded('ERR_NOT_PROVISIONED', 'not provisioned: run "ereceipt-auth provision"'));
  expect(gaps).toEqual([15 * 60_000, 15 * 60_000, 15 * 60_000]);
  expect(log).toEqual(['ereceipt-auth: error: not provisioned: run "ereceipt-auth provision"; will ask again about every 15 minutes\n']);
});

it('a bug: about every 15 minutes, logged once as one', async () => {
  const { gaps, log } = await waits(() => new TypeError('driver exploded'));
  expect(gaps).toEqual([15 * 60_000, 15 * 60_000, 15 * 60_000]);
  expect(log).toEqual(['ereceipt-auth: error: internal error (driver exploded): please report it; will ask again about every 15 minutes\n']);
});

it('a token is still served as before', async () => {
  const clock = createVirtualClock(Date.UTC(2026, 10, 28), () => 0.5);
  const m = createTokenManager({ login: async () => ({ token: token(), obtainedAt: clock.now() }), clocks: clock, log: createLogger({ write: () => {} }) });
  await expect(m.getToken()).resolves.toBe('header.payload.signature');
  await m.close();
});
