/** Pure timing decisions, kept apart so they can be tested by tables. */

export interface BackoffPolicy {
  /** First ceiling, ms. */
  baseMs: number;
  /** Largest ceiling, ms. */
  capMs: number;
}

export const BOOT_BACKOFF: BackoffPolicy = { baseMs: 1000, capMs: 30_000 };

/**
 * How long to wait before retry number `attempt` (0 for the first retry): capped
 * exponential backoff with full jitter, so terminals that lost the network
 * together do not come back in step. A server's `Retry-After` wins when longer.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number, retryAfterMs?: number): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  const jittered = Math.floor(random() * ceiling);
  return retryAfterMs === undefined ? jittered : Math.max(retryAfterMs, jittered);
}

/**
 * The longest `Retry-After` obeyed while no valid token is held: past it the
 * terminal cannot issue receipts, so it asks again sooner than the service said.
 */
export const NO_TOKEN_RETRY_AFTER_CAP_MS = 15 * 60 * 1000;

/** Retries of a failing renewal while the current token is still served. */
export const RUN_BACKOFF: BackoffPolicy = { baseMs: 1000, capMs: 60_000 };

/** Retries of a fault on the terminal's side that may mend by itself (garbage from a restarting co-processor). */
export const SLOW_BACKOFF: BackoffPolicy = { baseMs: 30_000, capMs: 15 * 60_000 };

/** After a rejection: slow retries, in case the account is unblocked on the portal. */
export const REJECTED_RETRY_MS = 15 * 60 * 1000;

export interface RefreshPolicy {
  /** Share of the lifetime left at renewal, before jitter: 0.10 to 0.20 for a spread of 0.10. */
  share: number;
  spread: number;
  /** Never renew with less than this left, lifetime allowing. */
  floorMs: number;
}

export const REFRESH: RefreshPolicy = { share: 0.1, spread: 0.1, floorMs: 60_000 };

/**
 * How long after a token was obtained to renew it: in the last 10-20 % of its life
 * (chosen at random, so a fleet that booted together after a power cut spreads
 * out), at least `floorMs` before expiry, and never before three quarters of its
 * life have passed, so a token of a few seconds is renewed about once per lifetime
 * rather than in a storm.
 */
export function refreshDelay(lifetimeMs: number, policy: RefreshPolicy, random: () => number): number {
  const margin = Math.min(lifetimeMs / 4, Math.max(policy.floorMs, lifetimeMs * (policy.share + policy.spread * random())));
  return lifetimeMs - margin;
}

/** Slow retry after a rejection: about every 15 minutes, give or take 10 %. */
export function rejectedRetryDelay(random: () => number): number {
  return REJECTED_RETRY_MS * (0.9 + 0.2 * random());
}
