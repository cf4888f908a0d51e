import type { Clocks } from '../../src/clock';
import { seededRandom } from './random';

/**
 * Simulated time for long spans (a day of refreshes): timers run in order as
 * `advance` moves the monotonic clock; the wall clock is the monotonic one plus an
 * offset that `jumpWall` changes, as an NTP sync does on a terminal without an RTC.
 */
export interface VirtualClock extends Clocks {
  advance(ms: number): Promise<void>;
  jumpWall(ms: number): void;
  pending(): number;
}

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export function createVirtualClock(start = Date.UTC(2026, 10, 28), random: () => number = seededRandom(1)): VirtualClock {
  let mono = 1_000_000;
  let wallOffset = start - mono;
  let seq = 0;
  const heap: Timer[] = [];

  const less = (a: Timer, b: Timer) => a.at < b.at || (a.at === b.at && a.seq < b.seq);
  const push = (t: Timer) => {
    heap.push(t);
    for (let i = heap.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!less(heap[i] as Timer, heap[parent] as Timer)) break;
      [heap[i], heap[parent]] = [heap[parent] as Timer, heap[i] as Timer];
      i = parent;
    }
  };
  const pop = (): Timer | undefined => {
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last) {
      heap[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && less(heap[l] as Timer, heap[m] as Timer)) m = l;
        if (r < heap.length && less(heap[r] as Timer, heap[m] as Timer)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m] as Timer, heap[i] as Timer];
        i = m;
      }
    }
    return top;
  };
  const settle = async () => {
    for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  };
  const setTimer = (fn: () => void, ms: number) => {
    const timer: Timer = { at: mono + Math.max(0, ms), seq: seq++, fn, cancelled: false };
    push(timer);
    return () => {
      timer.cancelled = true;
    };
  };

  return {
    now: () => mono + wallOffset,
    monotonic: () => mono,
    random,
    setTimer,
    sleep: (ms) => new Promise<void>((resolve) => setTimer(resolve, ms)),
    async advance(ms) {
      const target = mono + ms;
      await settle();
      for (;;) {
        const next = heap[0];
        if (!next || next.at > target) break;
        pop();
        if (next.cancelled) continue;
        mono = Math.max(mono, next.at);
        next.fn();
        await settle();
      }
      mono = target;
    },
    jumpWall(ms) {
      wallOffset += ms;
    },
    pending: () => heap.filter((t) => !t.cancelled).length,
  };
}
