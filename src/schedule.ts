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
