/** The clocks, timers and chance the module runs on; tests pass their own. */
export interface Clocks {
  /** Wall clock, ms since the epoch: jumps when NTP first syncs a terminal without an RTC. */
  now: () => number;
  /** Monotonic clock, ms; only differences mean anything. */
  monotonic: () => number;
  random: () => number;
  sleep: (ms: number) => Promise<void>;
  /**
   * Calls `fn` after `ms`; returns the cancel function. A timer that does not keep
   * the process alive (`keepAlive` false) suits a library inside someone else's app.
   */
  setTimer: (fn: () => void, ms: number, keepAlive: boolean) => () => void;
}

export const systemClocks: Clocks = {
  now: Date.now,
  // hrtime rather than performance.now(): the perf_hooks machinery costs start-up time.
  monotonic: () => Number(process.hrtime.bigint()) / 1e6,
  random: Math.random,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  setTimer: (fn, ms, keepAlive) => {
    // setTimeout's limit is 2^31-1 ms (24.8 days); longer would fire at once.
    const timer = setTimeout(fn, Math.min(Math.max(0, ms), 2 ** 31 - 1));
    if (!keepAlive) timer.unref();
    return () => clearTimeout(timer);
  },
};
