/** The clocks and chance the module runs on; tests pass their own. */
export interface Clocks {
  /** Wall clock, ms since the epoch: jumps when NTP first syncs a terminal without an RTC. */
  now: () => number;
  /** Monotonic clock, ms; only differences mean anything. */
  monotonic: () => number;
  random: () => number;
  sleep: (ms: number) => Promise<void>;
}

export const systemClocks: Clocks = {
  now: Date.now,
  monotonic: () => performance.now(),
  random: Math.random,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};
