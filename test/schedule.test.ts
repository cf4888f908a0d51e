import { backoffDelay, BOOT_BACKOFF, REFRESH, refreshDelay, rejectedRetryDelay } from '../src/schedule';

describe('backoffDelay', () => {
  it.each([
    // attempt, random, Retry-After, expected ms
    [0, 0.999, undefined, 999],
    [1, 0.5, undefined, 1000],
    [2, 0.5, undefined, 2000],
    [4, 0.999, undefined, 15984],
    [5, 0.999, undefined, 29970],
    [40, 0.999, undefined, 29970],
    [0, 0, undefined, 0],
    [0, 0.5, 10_000, 10_000],
    [5, 0.9, 1000, 27000],
  ])('attempt %i, random %f, Retry-After %p -> %i ms', (attempt, random, retryAfter, expected) => {
    expect(backoffDelay(attempt, BOOT_BACKOFF, () => random, retryAfter)).toBe(expected);
  });

  it('never exceeds the cap, whatever the attempt', () => {
    for (let attempt = 0; attempt < 100; attempt++) {
      expect(backoffDelay(attempt, BOOT_BACKOFF, () => 0.999999)).toBeLessThan(BOOT_BACKOFF.capMs);
    }
  });
});

describe('refreshDelay', () => {
  const policy = REFRESH;
  it.each([
    // lifetime s, random, renew after s, left at renewal s
    [3600, 0, 3240, 360],
    [3600, 0.5, 3060, 540],
    [3600, 0.999999, 2880, 720],
    [600, 0, 540, 60],
    [600, 1, 480, 120],
    [120, 0.5, 90, 30],
    [8, 0, 6, 2],
    [8, 1, 6, 2],
    [1, 0.5, 0.75, 0.25],
  ])('a %i s token, random %f: renewed after %f s (%f s left)', (lifetime, random, after, left) => {
    const delay = refreshDelay(lifetime * 1000, policy, () => random);
    expect(delay / 1000).toBeCloseTo(after, 2);
    expect(lifetime - delay / 1000).toBeCloseTo(left, 2);
  });

  it('renews a 3600 s token in its last 10-20 %, and any token after three quarters of its life', () => {
    for (let i = 0; i <= 100; i++) {
      const left = 3600 - refreshDelay(3_600_000, policy, () => i / 100) / 1000;
      expect(left).toBeGreaterThanOrEqual(360);
      expect(left).toBeLessThanOrEqual(720);
    }
    for (let i = 0; i <= 100; i++) {
      for (const lifetime of [1, 8, 60, 600, 3600, 86_400]) {
        const delay = refreshDelay(lifetime * 1000, policy, () => i / 100);
        expect(delay).toBeGreaterThanOrEqual(lifetime * 750 - 1e-6);
        expect(delay).toBeLessThan(lifetime * 1000);
      }
    }
  });
});

describe('rejectedRetryDelay', () => {
  it.each([
    [0, 13.5],
    [0.5, 15],
    [1, 16.5],
  ])('random %f -> %f minutes', (random, minutes) => {
    expect(rejectedRetryDelay(() => random) / 60_000).toBeCloseTo(minutes, 5);
  });
});
