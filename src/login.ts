import type { DeviceHal } from '../hal/types';
import type { Clocks } from './clock';
import { resolveOsVersion, type Config } from './config';
import { readCredentials } from './credentials';
import { EreceiptError, failureWhat } from './errors';
import { classifyFailure } from './failure-class';
import { requestToken, type TokenGrant, type TokenSet } from './identity-client';
import { hasB2c, NO_B2C_WARNING } from './jwt';
import type { Logger } from './log';
import { redact } from './secret';
import { backoffDelay, BOOT_BACKOFF } from './schedule';
import { recordState, tokenFileFrom, writeTokenFile, type TokenFile } from './token-file';
import type { HttpTransport } from './transport';

/** Reads the terminal's identity and its credentials: all that a login needs. A stop (`signal`) ends a slow HAL read at once. */
export async function loadGrant(config: Config, hal: DeviceHal, signal?: AbortSignal): Promise<TokenGrant> {
  const identity = await untilAborted(hal.identity(), signal);
  const deviceSecret = hal.deviceSecret ? await untilAborted(hal.deviceSecret(), signal) : undefined;
  const credentials = await readCredentials(config.credentialsFile, { serial: identity.serial, ...(deviceSecret ? { deviceSecret } : {}) });
  return {
    identityUrl: config.identityUrl,
    identity,
    osVersion: resolveOsVersion(config),
    credentials,
    ...(config.scope ? { scope: config.scope } : {}),
  };
}

export interface LoginOptions {
  transport: HttpTransport;
  config: Pick<Config, 'timeoutSeconds'>;
  clocks: Clocks;
  log: Logger;
  /** How long transient failures are retried, ms; 0 for one try. */
  waitMs: number;
}

/**
 * Logs in, retrying what src/failure-class.ts calls `retry-soon` (the service, or
 * the hardware, busy or unreachable) with backoff until `waitMs` has passed. The
 * grant is read anew at each try, so a HAL that answers late still counts; every
 * other failure ends it at once, with its own exit status.
 */
export async function loginWithRetry(readGrant: () => Promise<TokenGrant>, options: LoginOptions): Promise<{ token: TokenSet; obtainedAt: number; grant: TokenGrant }> {
  const { clocks, log } = options;
  const deadline = clocks.monotonic() + options.waitMs;
  const timeoutMs = options.config.timeoutSeconds * 1000;
  for (let attempt = 0; ; attempt++) {
    try {
      const grant = await readGrant();
      // --wait bounds the whole login, each try included; --wait 0 is one try with the configured timeout.
      const left = deadline - clocks.monotonic();
      const tryMs = options.waitMs === 0 ? timeoutMs : Math.max(1000, Math.min(timeoutMs, left));
      // The lifetime counts from when the request left, not from when the answer came.
      const startedAt = clocks.now();
      const token = await requestToken(grant, { transport: options.transport, timeoutMs: tryMs, now: clocks.now });
      return { token, obtainedAt: startedAt, grant };
    } catch (error) {
      if (classifyFailure(error) !== 'retry-soon') throw error;
      const delay = backoffDelay(attempt, BOOT_BACKOFF, clocks.random, (error as { retryAfterMs?: number }).retryAfterMs);
      if (clocks.monotonic() + delay >= deadline) throw error;
      log.warn(`${failureWhat(error)}; retrying in ${Math.ceil(delay / 1000)} s`);
      await clocks.sleep(delay);
    }
  }
}

/** One login for the token manager: reads the HAL and the credentials anew each time, so a new provisioning takes effect. */
export function loginOnce(
  config: Config,
  hal: DeviceHal | (() => Promise<DeviceHal>),
  transport: HttpTransport,
  clocks: Clocks,
): (signal: AbortSignal) => Promise<{ token: TokenSet; obtainedAt: number }> {
  return async (signal) => {
    // A driver that could not be opened (a UART another process holds) is opened again at the next try.
    const device = typeof hal === 'function' ? await hal() : hal;
    const grant = await loadGrant(config, device, signal);
    const obtainedAt = clocks.now();
    const token = await requestToken(grant, { transport, timeoutMs: config.timeoutSeconds * 1000, signal, now: clocks.now });
    return { token, obtainedAt };
  };
}

/** The promise's value, or a rejection as soon as `signal` aborts (the read itself is left to end or be closed). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  const cancelled = () => new EreceiptError('ERR_INTERRUPTED', 'the read from the terminal was cancelled: the service is stopping');
  if (signal.aborted) return Promise.reject(cancelled());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(cancelled());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Writes the token file and notes the success; warns when the taxpayer cannot submit receipts. */
export async function saveToken(config: Pick<Config, 'tokenFile'>, token: TokenSet, obtainedAt: number, log: Logger): Promise<TokenFile> {
  const file = tokenFileFrom(token, obtainedAt);
  await writeTokenFile(config.tokenFile, file);
  await recordState(
    config.tokenFile,
    {
      last_success_at: file.obtained_at,
      ...(token.serverDate === undefined ? {} : { clock_offset_seconds: Math.round((token.serverDate - obtainedAt) / 1000) }),
    },
    { error: true },
  );
  if (hasB2c(token.claims.taxpayerTags) === false) log.warn(NO_B2C_WARNING);
  return file;
}

/** Notes a failure for `status`, then lets it go on. */
export async function noteFailure(config: Pick<Config, 'tokenFile'>, error: unknown, now: number): Promise<void> {
  const e = error as { code?: string; message?: string };
  const message = redact(e.message ?? String(error));
  await recordState(config.tokenFile, { last_error: { code: e.code ?? 'ERR_INTERNAL', message, at: new Date(now).toISOString() } });
}
