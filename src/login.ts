import type { DeviceHal } from '../hal/types';
import type { Clocks } from './clock';
import { resolveOsVersion, type Config } from './config';
import { readCredentials } from './credentials';
import { EreceiptError, failureWhat } from './errors';
import { classifyFailure } from './failure-class';
import { requestToken, type TokenGrant, type TokenSet } from './identity-client';
import type { Logger } from './log';
import { backoffDelay, BOOT_BACKOFF } from './schedule';
import { holdToken, type HeldToken } from './token-manager';
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
export async function loginWithRetry(readGrant: () => Promise<TokenGrant>, options: LoginOptions): Promise<{ held: HeldToken; grant: TokenGrant }> {
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
      const startedMono = clocks.monotonic();
      const token = await requestToken(grant, { transport: options.transport, timeoutMs: tryMs, now: clocks.now, monotonic: clocks.monotonic });
      return { held: holdToken(token, startedAt, startedMono), grant };
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
    const token = await requestToken(grant, { transport, timeoutMs: config.timeoutSeconds * 1000, signal, now: clocks.now, monotonic: clocks.monotonic });
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
