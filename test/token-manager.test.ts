// The token lifecycle on simulated time: single flight, backoff, rejection, a whole
// day under a fault schedule, and a fleet of 10,000 terminals booting together.
import { EreceiptError } from '../src/errors';
import type { TokenSet } from '../src/identity-client';
import { createLogger } from '../src/log';
import { tokenFileFromHeld } from '../src/token-file';
import { createTokenManager, type HeldToken, type TokenManagerOptions } from '../src/token-manager';
import { seededRandom } from './helpers/random';
import { createVirtualClock, type VirtualClock } from './helpers/virtual-clock';

const HOUR = 3_600_000;
const MINUTE = 60_000;

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
});
afterEach(() => expect(unhandled).toEqual([]));

let serial = 0;
function tokenSet(lifetimeS: number): TokenSet {
  serial += 1;
  return { accessToken: `header.payload-${serial}.signature`, tokenType: 'Bearer', expiresIn: lifetimeS, claims: {} };
}

const transient = (retryAfterMs?: number) =>
  new EreceiptError('ERR_SERVICE_UNAVAILABLE', 'identity service is busy (HTTP 503)', retryAfterMs === undefined ? { remedy: 'try again later' } : { remedy: 'try again later', retryAfterMs });
const rejection = () => new EreceiptError('ERR_CREDENTIALS_REJECTED', 'presharedkey rejected by the identity service (invalid_presharedkey)', { remedy: 're-run provisioning', lasting: true });

function quietLog(lines: string[] = []) {
  return createLogger({ write: (line) => void lines.push(line) });
}

function manager(clock: VirtualClock, login: TokenManagerOptions['login'], extra: Partial<TokenManagerOptions> = {}) {
  return createTokenManager({ login, clocks: clock, log: quietLog(), ...extra });
}

describe('single flight', () => {
  it('concurrent callers share one login', async () => {
    const clock = createVirtualClock();
    let logins = 0;
    const m = manager(clock, async () => {
      logins += 1;
      await clock.sleep(500);
      return { token: tokenSet(3600), obtainedAt: clock.now() };
    });
    const all = Promise.all(Array.from({ length: 100 }, () => m.getToken()));
    await clock.advance(1000);
    const tokens = await all;
    expect(new Set(tokens).size).toBe(1);
    expect(logins).toBe(1);
    expect(await m.getToken()).toBe(tokens[0]);
    expect(logins).toBe(1);
    await m.close();
  });

  it('forceRefresh drops the token and shares one new login', async () => {
    const clock = createVirtualClock();
    let logins = 0;
    const m = manager(clock, async () => ({ token: tokenSet(3600 + logins++), obtainedAt: clock.now() }));
    const first = await m.getToken();
    const [a, b] = await Promise.all([m.forceRefresh(), m.forceRefresh()]);
    expect(a).toBe(b);
    expect(a).not.toBe(first);
    expect(logins).toBe(2);
    await m.close();
  });
});

describe('failures', () => {
  it('a failure is never held as a token; callers get it without a request of their own until the retry', async () => {
    const clock = createVirtualClock(undefined, () => 0.5);
    const answers: (() => Promise<{ token: TokenSet; obtainedAt: number }>)[] = [
      async () => {
        throw transient();
      },
      async () => ({ token: tokenSet(3600), obtainedAt: clock.now() }),
    ];
    let logins = 0;
    const lines: string[] = [];
    const m = manager(clock, () => (answers[logins++] as () => Promise<{ token: TokenSet; obtainedAt: number }>)(), { log: quietLog(lines) });
    await expect(m.getToken()).rejects.toMatchObject({ code: 'ERR_SERVICE_UNAVAILABLE' });
    await expect(m.getToken()).rejects.toMatchObject({ code: 'ERR_SERVICE_UNAVAILABLE' });
    expect(logins).toBe(1);
    expect(m.state().lastError?.code).toBe('ERR_SERVICE_UNAVAILABLE');
    await clock.advance(1000); // backoff of the first retry: up to 1 s, 0.5 s with this random
    expect(logins).toBe(2);
    expect(await m.getToken()).toMatch(/^header\./);
    expect(m.state().lastError).toBeUndefined();
    expect(lines).toEqual([
      'ereceipt-auth: warning: identity service is busy (HTTP 503); try 1, next in 1 s\n',
      'ereceipt-auth: token renewed after 1 failed try\n',
    ]);
    await m.close();
  });

  it('keeps serving the current token while renewals fail, honouring Retry-After', async () => {
    const clock = createVirtualClock(undefined, () => 0);
    const calls: number[] = [];
    let fail = false;
    const m = manager(clock, async () => {
      calls.push(clock.monotonic());
      if (fail) throw transient(120_000);
      return { token: tokenSet(3600), obtainedAt: clock.now() };
    });
    const token = await m.getToken();
    fail = true;
    await clock.advance(3240_000); // renewal at 90 % of the life with random 0
    expect(calls).toHaveLength(2);
    await clock.advance(119_000);
    expect(calls).toHaveLength(2);
    expect(await m.getToken()).toBe(token);
    await clock.advance(1000);
    expect(calls).toHaveLength(3);
    await m.close();
  });

  it('with no valid token, a Retry-After over 15 minutes is cut to 15 minutes, and the log says so; with one, it is obeyed', async () => {
    const clock = createVirtualClock(undefined, () => 0);
    const lines: string[] = [];
    const calls: number[] = [];
    const m = manager(clock, async () => {
      calls.push(clock.monotonic());
      throw transient(HOUR);
    }, { log: quietLog(lines) });
    m.start();
    await clock.advance(0);
    expect(calls).toHaveLength(1);
    expect(m.state().nextAttemptAt).toBe(clock.now() + 15 * MINUTE);
    expect(lines).toEqual(['ereceipt-auth: warning: identity service is busy (HTTP 503); try 1, next in 900 s, sooner than the service asked since there is no valid token\n']);
    await clock.advance(15 * MINUTE);
    expect(calls).toHaveLength(2);
    await m.close();

    // Holding a valid token, the service's word is kept: the token is still served meanwhile.
    let fail = false;
    const held = manager(clock, async () => {
      if (fail) throw transient(HOUR);
      return { token: tokenSet(7200), obtainedAt: clock.now() };
    });
    await held.getToken();
    fail = true;
    await clock.advance(6480_000); // the renewal, at 90 % of the life with random 0
    expect(held.state().nextAttemptAt).toBe(clock.now() + HOUR);
    await held.close();
  });

  it('a rejection is logged once, retried about every 15 minutes, and shows in the state', async () => {
    const clock = createVirtualClock(undefined, () => 0.5);
    let logins = 0;
    const lines: string[] = [];
    const m = manager(
      clock,
      async () => {
        logins += 1;
        if (logins <= 3) throw rejection();
        return { token: tokenSet(3600), obtainedAt: clock.now() };
      },
      { log: quietLog(lines) },
    );
    m.start();
    await clock.advance(0);
    expect(logins).toBe(1);
    expect(m.state()).toMatchObject({ rejected: true, lastError: { code: 'ERR_CREDENTIALS_REJECTED' } });
    await expect(m.getToken()).rejects.toMatchObject({ code: 'ERR_CREDENTIALS_REJECTED' });
    expect(logins).toBe(1);
    await clock.advance(14 * MINUTE);
    expect(logins).toBe(1);
    await clock.advance(2 * MINUTE);
    expect(logins).toBe(2);
    await clock.advance(31 * MINUTE);
    expect(logins).toBe(4);
    expect(m.state().rejected).toBe(false);
    expect(lines.filter((l) => l.includes('rejected'))).toEqual([
      'ereceipt-auth: error: presharedkey rejected by the identity service (invalid_presharedkey): re-run provisioning; will ask again about every 15 minutes\n',
    ]);
    await m.close();
  });

  it('an answer slower than the renewal delay does not stop the renewals', async () => {
    const clock = createVirtualClock();
    let logins = 0;
    const m = manager(clock, async () => {
      logins += 1;
      const obtainedAt = clock.now();
      await clock.sleep(10_000); // 10 s to answer, for a token of 8 s: renew at once, again and again
      return { token: tokenSet(8), obtainedAt };
    }, {
      // Writing the token file takes time, as it does on a terminal's flash: the
      // renewal, already due, must wait for it and then start, not join the old login.
      onToken: () => clock.sleep(20),
    });
    m.start();
    await clock.advance(200_000);
    // A login every 10.02 s (10 s to answer, 20 ms to write), each due at once: 0 s, 10.02 s … 190.38 s.
    expect(logins).toBe(20);
    await m.close();
  });

  it('a HAL that does not answer is retried with the fast backoff, not as a rejection', async () => {
    const clock = createVirtualClock(undefined, () => 0.5);
    let logins = 0;
    const m = manager(clock, async () => {
      logins += 1;
      if (logins <= 2) throw new EreceiptError('ERR_HAL_UNAVAILABLE', 'serial device /dev/ttyS1 is in use by another process', { remedy: 'stop it, or wait for it to finish' });
      return { token: tokenSet(3600), obtainedAt: clock.now() };
    });
    m.start();
    await clock.advance(5000);
    expect(logins).toBe(3);
    expect(m.state().rejected).toBe(false);
    await m.close();
  });

  it('not provisioned: asked again slowly, logged once, and not reported as a rejection', async () => {
    const clock = createVirtualClock(undefined, () => 0.5);
    let logins = 0;
    const lines: string[] = [];
    const m = manager(
      clock,
      async () => {
        logins += 1;
        throw new EreceiptError('ERR_NOT_PROVISIONED', 'not provisioned: there is no credentials file /var/lib/ereceipt-auth/credentials', { remedy: 'run "ereceipt-auth provision"' });
      },
      { log: quietLog(lines) },
    );
    m.start();
    await clock.advance(46 * MINUTE);
    expect(logins).toBe(4);
    expect(m.state()).toMatchObject({ rejected: false, lastError: { code: 'ERR_NOT_PROVISIONED' } });
    expect(lines).toHaveLength(1);
    await m.close();
  });

  it('forceRefresh with a token already replaced does not log in again', async () => {
    const clock = createVirtualClock();
    let logins = 0;
    const m = manager(clock, async () => ({ token: tokenSet(3600 + logins++), obtainedAt: clock.now() }));
    const stale = await m.getToken();
    const fresh = await m.forceRefresh(stale);
    expect(await m.forceRefresh(stale)).toBe(fresh);
    expect(logins).toBe(2);
    await m.close();
  });

  it('close stops every timer and cancels the login in flight', async () => {
    const clock = createVirtualClock();
    let aborted = false;
    const m = manager(clock, (signal) => new Promise((_resolve, reject) => signal.addEventListener('abort', () => ((aborted = true), reject(new Error('aborted'))))), { clockCheckMs: 10_000 });
    m.start();
    await clock.advance(0);
    expect(clock.pending()).toBe(1); // the clock check
    await m.close();
    expect(aborted).toBe(true);
    // Cancelled by close itself, not merely left to fire into a closed manager.
    expect(clock.pending()).toBe(0);
    await clock.advance(HOUR);
    expect(clock.pending()).toBe(0);
  });

  it('close cancels the planned renewal of a held token', async () => {
    const clock = createVirtualClock();
    let logins = 0;
    const m = manager(clock, async () => ((logins += 1), { token: tokenSet(3600), obtainedAt: clock.now() }));
    m.start();
    await clock.advance(0);
    expect(logins).toBe(1);
    expect(clock.pending()).toBe(1); // the renewal
    await m.close();
    expect(clock.pending()).toBe(0);
    await clock.advance(2 * HOUR);
    expect(logins).toBe(1);
  });
});

describe('the service\'s clock through steps of the wall clock (what a POS app dates receipts by)', () => {
  /** A token whose answer says the service is `aheadMs` ahead of the virtual wall clock, measured with a 100 ms round trip. */
  const measured = (clock: VirtualClock, aheadMs: number): TokenSet => ({ ...tokenSet(3600), clock: { serverMinusMonoMs: clock.now() + aheadMs - clock.monotonic(), precisionMs: 550 } });

  async function started(login: (clock: VirtualClock) => TokenSet) {
    const clock = createVirtualClock(Date.UTC(2026, 11, 7));
    const files: { offset?: number; expiresAt: number }[] = [];
    const m = createTokenManager({
      clocks: clock,
      log: quietLog(),
      clockCheckMs: 10_000,
      login: async () => ({ token: login(clock), obtainedAt: clock.now() }),
      onToken: (held: HeldToken) => void files.push(file(held)),
      onClockJump: (held: HeldToken) => void files.push(file(held)),
    });
    const file = (held: HeldToken) => {
      const f = tokenFileFromHeld(held, clock.now(), clock.monotonic());
      return { ...(f.clock_offset_seconds === undefined ? {} : { offset: f.clock_offset_seconds }), expiresAt: Date.parse(f.expires_at) };
    };
    m.start();
    await clock.advance(0);
    return { clock, m, files };
  }

  it('a step back of 1.5 s (under the old 2 s threshold) rewrites the file: the offset follows, so no receipt lands in the service\'s future', async () => {
    const { clock, m, files } = await started((c) => measured(c, 3_000));
    expect(files.at(-1)?.offset).toBe(3);
    clock.jumpWall(-1_500);
    await clock.advance(10_000);
    expect(files.at(-1)?.offset).toBe(4.5);
    expect(m.state().clockOffset?.seconds).toBe(4.5);
    await m.close();
  });

  it('a step forward past a minute: the file loses the offset and keeps its expiry until the renewal brings both back', async () => {
    let down = false;
    const { clock, m, files } = await started((c) => {
      if (down) throw new EreceiptError('ERR_SERVICE_UNAVAILABLE', 'identity service is unreachable');
      return measured(c, 3_000);
    });
    const before = files.at(-1);
    down = true;
    // A terminal without an RTC, set by NTP: or a resume from suspend. Which one cannot be told.
    clock.jumpWall(56 * 365 * 24 * HOUR);
    await clock.advance(10_000);
    expect(files.at(-1)).toEqual({ expiresAt: before?.expiresAt });
    expect(m.state().clockOffset).toBeUndefined();
    down = false;
    await clock.advance(60_000);
    expect(files.at(-1)?.offset).toBe(3);
    expect(files.at(-1)?.expiresAt).toBeGreaterThan(clock.now() + 3500_000);
    await m.close();
  });

  it('the measurement outlives its token: state().clockOffset stays through a forced renewal and an outage after it', async () => {
    let down = false;
    const { clock, m } = await started((c) => {
      if (down) throw new EreceiptError('ERR_SERVICE_UNAVAILABLE', 'identity service is unreachable');
      return measured(c, -2_000);
    });
    const stale = await m.getToken();
    down = true;
    await expect(m.forceRefresh(stale)).rejects.toMatchObject({ code: 'ERR_SERVICE_UNAVAILABLE' });
    expect(m.state().token).toBeUndefined();
    expect(m.state().clockOffset).toEqual({ seconds: -2, precisionSeconds: 0.6 });
    await clock.advance(0);
    await m.close();
  });
});

describe('a simulated day', () => {
  it.each([1, 2, 3])('keeps a valid token through outages, throttling, slow answers and wall-clock jumps (seed %i)', async (seed) => {
    const clock = createVirtualClock(Date.UTC(2026, 10, 28), seededRandom(seed));
    const start = clock.monotonic();
    const at = (h: number, m = 0) => start + h * HOUR + m * MINUTE;
    const outages = [
      [at(3), at(3, 1)],
      [at(7, 50), at(8)],
      [at(14), at(15, 10)],
    ] as const;
    const throttled = [at(10), at(10, 5)] as const;
    const slow = [at(12), at(12, 30)] as const;
    const within = (t: number, [from, to]: readonly [number, number]) => t >= from && t < to;
    const down = (t: number) => outages.some((o) => within(t, o));
    /** A token answer was to be had: no outage, no throttling. */
    const answering = (t: number) => !down(t) && !within(t, throttled);

    let requests = 0;
    let failed = 0;
    /** The monotonic time each successful login's request left: its token lasts 3600 s from there. */
    const loginStarts: number[] = [];
    const written: { wall: number; expiresAt: number; mono: number; expMono: number; jump: boolean }[] = [];
    const m = createTokenManager({
      clocks: clock,
      log: quietLog(),
      clockCheckMs: 10_000,
      login: async () => {
        requests += 1;
        const t = clock.monotonic();
        if (down(t)) {
          failed += 1;
          throw new EreceiptError('ERR_SERVICE_UNAVAILABLE', 'identity service at id.eta.gov.eg is unreachable (ECONNREFUSED)');
        }
        if (within(t, throttled)) {
          failed += 1;
          throw transient(30_000);
        }
        const obtainedAt = clock.now();
        loginStarts.push(clock.monotonic());
        if (within(t, slow)) await clock.sleep(20_000);
        return { token: tokenSet(3600), obtainedAt };
      },
      onToken: (held: HeldToken) => write(held),
      onClockJump: (held: HeldToken) => write(held, true),
    });
    // What `run` writes: the product's own conversion of the held token into the token file.
    function write(held: HeldToken, jump = false): void {
      const file = tokenFileFromHeld(held, clock.now(), clock.monotonic());
      written.push({ wall: clock.now(), mono: clock.monotonic(), expMono: held.expiresAtMono, expiresAt: Date.parse(file.expires_at), jump });
    }
    m.start();

    let validSamples = 0;
    let samples = 0;
    const invalidAt: number[] = [];
    for (let t = 0; t < 24 * HOUR; t += 10_000) {
      if (t === 18 * HOUR) clock.jumpWall(2 * 365 * 24 * HOUR);
      if (t === 20 * HOUR) clock.jumpWall(-2 * 365 * 24 * HOUR - 5 * MINUTE);
      await clock.advance(10_000);
      samples += 1;
      const state = m.state();
      if (state.token && state.token.expiresAt > clock.now()) validSamples += 1;
      else invalidAt.push(clock.monotonic());
    }
    await m.close();

    const share = validSamples / samples;
    const successes = requests - failed;
    // The goal: no gap unless the service gave no token answer at all inside the
    // refresh margin (at least 6 minutes for these tokens). A retry comes at most 60 s
    // after the service is back, so before any gap the service must have been silent
    // from 6 minutes before it to a minute before it.
    const silentBefore = (t: number) => {
      for (let x = t - 6 * MINUTE; x <= t - 61_000; x += 1000) if (answering(x)) return false;
      return true;
    };
    const onlyWhenSilent = invalidAt.every(silentBefore);
    console.log(
      `simulated day (seed ${seed}): valid token ${(share * 100).toFixed(2)} % of the time; ${requests} requests (${successes} logins, ${failed} failed tries forced by faults); ` +
        `gaps only after the service was silent for a whole margin: ${onlyWhenSilent}`,
    );
    expect(onlyWhenSilent).toBe(true);
    expect(share).toBeGreaterThan(0.95);
    // One login per lifetime (renewed at 80-90 % of it), plus what the faults forced.
    expect(successes).toBeGreaterThanOrEqual(24);
    expect(successes).toBeLessThanOrEqual(32);
    expect(failed).toBeLessThan(130);
    // expires_at was rewritten after each jump, and always matched the monotonic time left,
    // rounded down to the second (never later than the service honours it).
    for (const w of written) expect(w.expiresAt).toBe(Math.floor((w.wall + (w.expMono - w.mono)) / 1000) * 1000);
    // And what the manager held is what the service granted: 3600 s from when a request left
    // (not from when a slow answer arrived), never more.
    expect(written.length).toBeGreaterThanOrEqual(successes);
    // Forward two years: it cannot be told from a resume after suspend, so the file is
    // first rewritten with its expiry as it was (the token may have aged by the jump),
    // then the token renewed at once.
    const afterForward = written.filter((w) => w.mono >= at(18) && w.mono < at(18, 1));
    const beforeForward = written.filter((w) => w.mono < at(18)).at(-1);
    expect(afterForward.length).toBeGreaterThanOrEqual(2);
    expect(afterForward[0]).toMatchObject({ jump: true, expiresAt: beforeForward?.expiresAt });
    expect(afterForward[1]?.expiresAt).toBeGreaterThan(Date.UTC(2028, 0, 1));
    for (const w of written) if (w !== afterForward[0]) expect(loginStarts.map((s) => s + 3600_000)).toContain(w.expMono);
    // Back again: the same token, its expiry rewritten in the corrected wall time.
    const afterBack = written.filter((w) => w.mono >= at(20) && w.mono < at(20, 1));
    expect(afterBack.length).toBeGreaterThanOrEqual(1);
    expect(afterBack[0]?.expiresAt).toBeLessThan(Date.UTC(2027, 0, 1));
  });
});

describe('a fleet of 10,000 terminals started in the same second', () => {
  async function peakRate(random: () => number): Promise<{ peak: number; spreadS: number }> {
    const clock = createVirtualClock(Date.UTC(2026, 10, 28), random);
    const times: number[] = [];
    const managers = Array.from({ length: 10_000 }, () =>
      createTokenManager({
        clocks: clock,
        log: quietLog(),
        login: async () => {
          times.push(clock.monotonic());
          return { token: tokenSet(3600), obtainedAt: clock.now() };
        },
      }),
    );
    const t0 = clock.monotonic();
    // Power comes back: every terminal boots within the same second.
    for (const [i, m] of managers.entries()) clock.setTimer(() => m.start(), (i * 1000) / managers.length, false);
    await clock.advance(HOUR + 2000);
    await Promise.all(managers.map((m) => m.close()));
    const refresh = times.filter((t) => t - t0 > 1500);
    expect(refresh).toHaveLength(10_000);
    const perSecond = new Map<number, number>();
    for (const t of refresh) perSecond.set(Math.floor((t - t0) / 1000), (perSecond.get(Math.floor((t - t0) / 1000)) ?? 0) + 1);
    return { peak: Math.max(...perSecond.values()), spreadS: (Math.max(...refresh) - Math.min(...refresh)) / 1000 };
  }

  it('jitter spreads the first refresh', async () => {
    const withJitter = await peakRate(seededRandom(10_000));
    const without = await peakRate(() => 0.5);
    console.log(
      `fleet of 10,000: first refresh peaks at ${withJitter.peak} requests/s over ${withJitter.spreadS.toFixed(0)} s with jitter, ` +
        `${without.peak} requests/s over ${without.spreadS.toFixed(0)} s without (${(without.peak / withJitter.peak).toFixed(0)}x)`,
    );
    expect(without.peak).toBeGreaterThan(4000);
    expect(withJitter.peak).toBeLessThan(100);
  }, 60_000);
});
