import { backoffDelay, BOOT_BACKOFF } from '../src/schedule';

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
