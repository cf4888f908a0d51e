import type { Clocks } from './clock';
import { EreceiptError, failureWhat, isEreceiptError } from './errors';
import type { TokenSet } from './identity-client';
import { hasB2c } from './jwt';
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
  /** The service's clock minus the monotonic clock, ms, when the answer had a `Date`; so the offset stays true after the wall clock jumps. */
  serverMinusMonoMs?: number;
  /** How far `serverMinusMonoMs` may be off, ms. */
  clockPrecisionMs?: number;
}

/**
 * A token as held from the moment its request left: `obtainedAt` wall ms, `startedMono`
 * monotonic ms. Its lifetime counts from then, and never past its own `exp`: that is
 * the service's clock, brought onto ours by the service's `Date` (less a second, the
 * header's own precision), so a reader that trusts `expires_at` to the end never
 * sends a token the API refuses, whatever the two clocks say.
 */
export function holdToken(token: TokenSet, obtainedAt: number, startedMono: number): HeldToken {
  let expiresAtMono = startedMono + token.expiresIn * 1000;
  const { exp } = token.claims;
  if (exp !== undefined && token.serverDate !== undefined) expiresAtMono = Math.min(expiresAtMono, startedMono + (exp * 1000 - token.serverDate) - 1000);
  const { clock } = token;
  return {
    token,
    obtainedAt,
    obtainedAtMono: startedMono,
    expiresAtMono,
    ...(clock ? { serverMinusMonoMs: clock.serverMinusMonoMs, clockPrecisionMs: clock.precisionMs } : {}),
  };
}

/** The service's clock offset (its clock minus ours at `now`), what the POS app dates receipts by: seconds to the tenth, and how far off that may be. */
export interface ClockOffset {
  /** Add to the local clock to get the service's; positive when the local clock is behind. */
  seconds: number;
  /** The true offset is within this many seconds of `seconds`. */
  precisionSeconds: number;
}

export function clockOffsetAt(held: Pick<HeldToken, 'serverMinusMonoMs' | 'clockPrecisionMs'>, now: number, monotonic: number): ClockOffset | undefined {
  if (held.serverMinusMonoMs === undefined || held.clockPrecisionMs === undefined) return undefined;
  // Rounding to the tenth adds up to 50 ms, counted in the precision.
  return { seconds: Math.round((monotonic + held.serverMinusMonoMs - now) / 100) / 10 || 0, precisionSeconds: Math.ceil((held.clockPrecisionMs + 50) / 100) / 10 };
}

function tokenState(held: HeldToken, toWall: (mono: number) => number): NonNullable<ManagerState['token']> {
  const { scope, claims } = held.token;
  return {
    expiresAt: toWall(held.expiresAtMono),
    obtainedAt: held.obtainedAt,
    ...(scope ? { scope } : {}),
    taxpayerRin: claims.taxpayerRin ?? null,
    taxpayerTags: claims.taxpayerTags ? [...claims.taxpayerTags] : null,
    b2c: hasB2c(claims.taxpayerTags) ?? null,
  };
}

/** What the manager is doing, for `status` and the state file. */
export interface ManagerState {
  token?: {
    /** Wall-clock ms. */
    expiresAt: number;
    /** Wall-clock ms. */
    obtainedAt: number;
    scope?: string;
    /** The taxpayer the token was issued to (`TaxRin`): a receipt's issuer must be this taxpayer; null when the token does not say. */
    taxpayerRin: string | null;
    /** The taxpayer's tags (`TaxProfTags`); null when the token does not list them. */
    taxpayerTags: string[] | null;
    /** Whether the taxpayer may submit receipts (holds the B2C tag); null when the token does not list tags. */
    b2c: boolean | null;
  };
  /** The service's clock offset, measured at the last login whose answer had a usable `Date` (none after a forward jump of the wall clock, until the next). */
  clockOffset?: ClockOffset;
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

/** A step of the wall clock against the monotonic one past this is acted on (the token file rewritten). */
const CLOCK_STEP_MS = 100;

/** How soon after a failed login a caller may ask for the next one itself, while no valid token is held. */
export const ON_DEMAND_GAP_MS = 2000;

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
  /** Where the last usable measurement of the service's clock is kept. */
  let clock: Pick<HeldToken, 'serverMinusMonoMs' | 'clockPrecisionMs'> | undefined;
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
  /** Monotonic ms when the last login ended (in success or failure). */
  let lastEndedMono: number | undefined;
  const abort = new AbortController();
  const closedError = () => new EreceiptError('ERR_CLOSED', 'the token manager is closed', { remedy: 'create a new one' });

  const valid = () => held !== undefined && clocks.monotonic() < held.expiresAtMono;

  function state(): ManagerState {
    const toWall = (mono: number) => clocks.now() + (mono - clocks.monotonic());
    const offset = clock && clockOffsetAt(clock, clocks.now(), clocks.monotonic());
    return {
      ...(held ? { token: tokenState(held, toWall) } : {}),
      ...(offset ? { clockOffset: offset } : {}),
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
    if (closed) return Promise.reject(closedError());
    inflight ??= (async () => {
      requests += 1;
      const startedMono = clocks.monotonic();
      try {
        const { token, obtainedAt } = await options.login(abort.signal);
        if (closed) throw closedError();
        const lifetimeMs = token.expiresIn * 1000;
        held = holdToken(token, obtainedAt, startedMono);
        // The last measurement of the service's clock outlives its token (a forced renewal, an outage).
        if (held.serverMinusMonoMs !== undefined) clock = held;
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
        // Closed meanwhile: whatever the login met (an abort, most likely), the caller's answer is that.
        if (closed) throw isEreceiptError(error) && error.code === 'ERR_CLOSED' ? error : closedError();
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
        lastEndedMono = clocks.monotonic();
      }
    })();
    return inflight;
  }

  /**
   * Recovery on demand: with no valid token, after a failure that may pass by itself
   * (the service unreachable or failing), a caller may start the next login without
   * waiting for the planned retry, once the last one ended ON_DEMAND_GAP_MS ago and
   * unless the service asked for a longer wait. Still one login at a time, and at most
   * one every two seconds however many callers ask; the background plan is unchanged.
   */
  function mayAskNow(): boolean {
    if (valid() || lastEndedMono === undefined || classifyFailure(lastError) !== 'retry-soon') return false;
    const since = clocks.monotonic() - lastEndedMono;
    const asked = (lastError as EreceiptError).retryAfterMs;
    return since >= ON_DEMAND_GAP_MS && (asked === undefined || since >= asked);
  }

  const rewrite = (h: HeldToken) => Promise.resolve(options.onClockJump?.(h)).catch((error: unknown) => log.error((error as Error).message));

  function checkClock(): void {
    const offset = clocks.now() - clocks.monotonic();
    const moved = offset - wallOffset;
    // The two clocks move together but for steps: even a small one changes expires_at
    // and the clock offset a reader dates receipts by. Only the large ones are logged.
    if (Math.abs(moved) > CLOCK_STEP_MS) {
      wallOffset = offset;
      if (moved > 60_000 && held) {
        // Forward: NTP, or a resume from suspend, during which the monotonic clock
        // stood still while the token aged. Which one cannot be told, so renew now;
        // meanwhile the file keeps its expiry as written (as if the token had aged by
        // the jump) and loses the service's clock, which is wrong in one case or the other.
        log.info(`the wall clock moved ${Math.round(moved / 1000)} s forward; renewing the token to be safe`);
        const { serverMinusMonoMs: _dropped, clockPrecisionMs: _precision, ...rest } = held;
        held = rest;
        clock = undefined;
        void rewrite({ ...rest, expiresAtMono: rest.expiresAtMono - moved });
        login().catch(() => {});
      } else {
        if (Math.abs(moved) > 2000) log.info(`the wall clock moved by ${Math.round(moved / 1000)} s; token expiry recomputed from the monotonic clock`);
        if (held) void rewrite(held);
        void notify();
      }
    }
    if (!closed && options.clockCheckMs) cancelClockCheck = clocks.setTimer(checkClock, options.clockCheckMs, keepAlive);
  }

  return {
    async getToken() {
      if (closed) throw closedError();
      if (valid()) return (held as HeldToken).token.accessToken;
      if (inflight) return (await inflight).token.accessToken;
      // While a retry is planned, a caller gets the last failure rather than a request of its own: no storms.
      if (lastError && nextAttemptMono !== undefined && clocks.monotonic() < nextAttemptMono && !mayAskNow()) throw lastError;
      return (await login()).token.accessToken;
    },
    async forceRefresh(stale) {
      if (closed) throw closedError();
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
