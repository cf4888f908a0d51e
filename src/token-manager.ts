import type { Clocks } from './clock';
import { EreceiptError, failureWhat, isEreceiptError } from './errors';
import type { TokenSet } from './identity-client';
import type { Logger } from './log';
import { classifyFailure } from './failure-class';
import { backoffDelay, NO_TOKEN_RETRY_AFTER_CAP_MS, refreshDelay, rejectedRetryDelay, REFRESH, RUN_BACKOFF, SLOW_BACKOFF } from './schedule';

/** A token the manager holds, with its expiry on the monotonic clock. */
export interface HeldToken {
  token: TokenSet;
  /** Monotonic ms at which the token expires: the request's start plus its lifetime. */
  expiresAtMono: number;
  /** Wall-clock ms when the request that got it started. */
  obtainedAt: number;
  /** Monotonic ms when that request started. */
  obtainedAtMono: number;
}

/** A token as held from the moment its request left: `obtainedAt` wall ms, `startedMono` monotonic ms. */
export function holdToken(token: TokenSet, obtainedAt: number, startedMono: number): HeldToken {
  return { token, obtainedAt, obtainedAtMono: startedMono, expiresAtMono: startedMono + token.expiresIn * 1000 };
}

/** What the manager is doing, for `status` and the state file. */
export interface ManagerState {
  token?: { expiresAt: number; obtainedAt: number; scope?: string };
  /** The last failure, until a login succeeds. */
  lastError?: { code: string; message: string; at: number };
  /** The identity service refused the credentials (exit 77's cause), and nothing has been accepted since. */
  rejected: boolean;
  /** Wall-clock ms of the next renewal or retry, if one is planned. */
  nextAttemptAt?: number;
  /** Logins asked of the identity service so far. */
  requests: number;
}

export interface TokenManagerOptions {
  /** One login (one request, no retries); the manager does the retrying. */
  login: (signal: AbortSignal) => Promise<{ token: TokenSet; obtainedAt: number }>;
  clocks: Clocks;
  log: Logger;
  /** Called with each new token. */
  onToken?: (held: HeldToken) => Promise<void> | void;
  /** Called when the wall clock jumps while a token is held: its wall-clock expiry must be redone. */
  onClockJump?: (held: HeldToken) => Promise<void> | void;
  /** Called after every change of state (a success, a failure, a new plan). */
  onState?: (state: ManagerState) => Promise<void> | void;
  /** Timers keep the process alive (the resident service), or not (a library). */
  keepAlive?: boolean;
  /** How often to look for wall-clock jumps, ms; 0 never. */
  clockCheckMs?: number;
}

export interface TokenManager {
  /** A valid access token: the one held while it lasts, else a login shared by all callers. */
  getToken(): Promise<string>;
  /**
   * Drops the held token and logs in again (the API said 401). Concurrent callers
   * share it; a caller whose `stale` token was already replaced gets the new one
   * without another login.
   */
  forceRefresh(stale?: string): Promise<string>;
  /** Logs in now and keeps renewing ahead of expiry, in the background. */
  start(): void;
  state(): ManagerState;
  /** Stops the timers and cancels a login in flight; nothing is written after it. */
  close(): Promise<void>;
}

/** Reports failed renewals on tries 1, 2, 4, 8…, so a long outage does not flood the log. */
const reportTry = (n: number) => (n & (n - 1)) === 0;

/**
 * Keeps a valid access token: single-flight logins, renewal in the last part of a
 * token's life on the monotonic clock, capped backoff with jitter on transient
 * failures (honouring Retry-After) while the current token is still served, and
 * slow retries after a rejection. A failure is never held as if it were a token.
 */
export function createTokenManager(options: TokenManagerOptions): TokenManager {
  const { clocks, log } = options;
  const keepAlive = options.keepAlive ?? false;
  let held: HeldToken | undefined;
  let inflight: Promise<HeldToken> | undefined;
  let lastError: EreceiptError | Error | undefined;
  let lastErrorAt = 0;
  let rejected = false;
  let lastSlowCode: string | undefined;
  let failures = 0;
  let requests = 0;
  let nextAttemptMono: number | undefined;
  let cancelTimer: (() => void) | undefined;
  let cancelClockCheck: (() => void) | undefined;
  let wallOffset = clocks.now() - clocks.monotonic();
  let closed = false;
  const abort = new AbortController();

  const valid = () => held !== undefined && clocks.monotonic() < held.expiresAtMono;

  function state(): ManagerState {
    const toWall = (mono: number) => clocks.now() + (mono - clocks.monotonic());
    return {
      ...(held
        ? { token: { expiresAt: toWall(held.expiresAtMono), obtainedAt: held.obtainedAt, ...(held.token.scope ? { scope: held.token.scope } : {}) } }
        : {}),
      ...(lastError ? { lastError: { code: (lastError as EreceiptError).code ?? 'ERR_INTERNAL', message: lastError.message, at: lastErrorAt } } : {}),
      rejected,
      ...(nextAttemptMono === undefined ? {} : { nextAttemptAt: toWall(nextAttemptMono) }),
      requests,
    };
  }

  async function notify(): Promise<void> {
    try {
      await options.onState?.(state());
    } catch (error) {
      log.warn(`could not record the service state (${(error as Error).message})`);
    }
  }

  /**
   * Sets the next renewal or retry. Called last in a login, once nothing more is
   * awaited: a timer due at once (an answer slower than the renewal delay) must find
   * that login over, not join it.
   */
  function plan(atMono: number): void {
    cancelTimer?.();
    if (closed) return;
    nextAttemptMono = atMono;
    const delayMs = Math.max(0, atMono - clocks.monotonic());
    cancelTimer = clocks.setTimer(
      () => {
        cancelTimer = undefined;
        // Failures were handled (logged, planned) inside login; nothing may reject unhandled.
        login().catch(() => {});
      },
      delayMs,
      keepAlive,
    );
  }

  function login(): Promise<HeldToken> {
    if (closed) return Promise.reject(new EreceiptError('ERR_SERVICE_UNAVAILABLE', 'the token manager is closed'));
    inflight ??= (async () => {
      requests += 1;
      const startedMono = clocks.monotonic();
      try {
        const { token, obtainedAt } = await options.login(abort.signal);
        if (closed) throw new EreceiptError('ERR_SERVICE_UNAVAILABLE', 'the token manager was closed during the login');
        const lifetimeMs = token.expiresIn * 1000;
        held = holdToken(token, obtainedAt, startedMono);
        if (failures > 0) log.info(`token renewed after ${failures} failed ${failures === 1 ? 'try' : 'tries'}`);
        failures = 0;
        rejected = false;
        lastSlowCode = undefined;
        lastError = undefined;
        nextAttemptMono = startedMono + refreshDelay(lifetimeMs, REFRESH, clocks.random);
        try {
          await options.onToken?.(held);
        } catch (error) {
          log.error((error as Error).message);
        }
        await notify();
        plan(nextAttemptMono);
        return held;
      } catch (error) {
        if (closed) throw error;
        failures += 1;
        lastError = error as Error;
        lastErrorAt = clocks.now();
        const message = (error as Error).message;
        const code = isEreceiptError(error) ? error.code : 'ERR_INTERNAL';
        const kind = classifyFailure(error);
        if (kind === 'retry-soon' || kind === 'retry-slowly') {
          // The service or the hardware may answer in a moment (a network outage, a
          // UART another process holds): retry fast while the current token lasts;
          // a terminal-side fault (garbage from the co-processor) from 30 s.
          const asked = (error as EreceiptError).retryAfterMs;
          const capped = asked !== undefined && !valid() && asked > NO_TOKEN_RETRY_AFTER_CAP_MS;
          const policy = kind === 'retry-soon' ? RUN_BACKOFF : SLOW_BACKOFF;
          const delay = backoffDelay(failures - 1, policy, clocks.random, capped ? NO_TOKEN_RETRY_AFTER_CAP_MS : asked);
          const note = valid() ? ', the current token is still served' : capped ? `, sooner than the service asked since there is no valid token` : '';
          if (reportTry(failures) || capped) log.warn(`${failureWhat(error)}; try ${failures}, next in ${Math.ceil(delay / 1000)} s${note}`);
          nextAttemptMono = clocks.monotonic() + delay;
        } else {
          // Only a person can mend this (new credentials, a fixed file), or it is a bug;
          // ask again now and then. Logged once per kind of failure, not every 15 minutes.
          if (lastSlowCode !== code) log.error(`${kind === 'bug' ? `internal error (${message}): please report it` : message}; will ask again about every 15 minutes`);
          lastSlowCode = code;
          rejected = code === 'ERR_CREDENTIALS_REJECTED';
          nextAttemptMono = clocks.monotonic() + rejectedRetryDelay(clocks.random);
        }
        await notify();
        plan(nextAttemptMono);
        throw error;
      } finally {
        inflight = undefined;
      }
    })();
    return inflight;
  }

  function checkClock(): void {
    const offset = clocks.now() - clocks.monotonic();
    const moved = offset - wallOffset;
    if (Math.abs(moved) > 2000) {
      wallOffset = offset;
      if (moved > 60_000 && held) {
        // Forward: NTP, or a resume from suspend, during which the monotonic clock
        // stood still while the token aged. Which one cannot be told, so renew now.
        log.info(`the wall clock moved ${Math.round(moved / 1000)} s forward; renewing the token to be safe`);
        login().catch(() => {});
      } else {
        log.info(`the wall clock moved by ${Math.round(moved / 1000)} s; token expiry recomputed from the monotonic clock`);
        if (held) Promise.resolve(options.onClockJump?.(held)).catch((error: unknown) => log.error((error as Error).message));
        void notify();
      }
    }
    if (!closed && options.clockCheckMs) cancelClockCheck = clocks.setTimer(checkClock, options.clockCheckMs, keepAlive);
  }

  return {
    async getToken() {
      if (valid()) return (held as HeldToken).token.accessToken;
      if (inflight) return (await inflight).token.accessToken;
      // While a retry is planned, a caller gets the last failure rather than a request of its own: no storms.
      if (lastError && nextAttemptMono !== undefined && clocks.monotonic() < nextAttemptMono) throw lastError;
      return (await login()).token.accessToken;
    },
    async forceRefresh(stale) {
      if (inflight) return (await inflight).token.accessToken;
      if (stale !== undefined && held && held.token.accessToken !== stale && valid()) return held.token.accessToken;
      held = undefined;
      return (await login()).token.accessToken;
    },
    start() {
      login().catch(() => {});
      if (options.clockCheckMs) cancelClockCheck = clocks.setTimer(checkClock, options.clockCheckMs, keepAlive);
    },
    state,
    async close() {
      closed = true;
      cancelTimer?.();
      cancelClockCheck?.();
      nextAttemptMono = undefined;
      // Not waiting for a login in flight: the abort ends a real one at once, and
      // whatever it still brings back is dropped (see the `closed` checks).
      abort.abort();
      inflight?.catch(() => {});
    },
  };
}
