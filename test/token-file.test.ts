// The token file: its schema, what it tells the POS application, and its expires_at: a reader that trusts it to the end must never hold a
// token the service no longer honours (its `exp`), whatever the two clocks say.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startIdentitySim, type IdentitySim } from './identity-sim';
import { runBundle } from './helpers/bundle';
import { provisionedIn } from './helpers/provisioned';
import { useTempDir } from './helpers/temp-dir';
import { expectValidTokenFile, tokenFileProblems, tokenFileProblemsIn } from './helpers/token-file-schema';
import { systemClocks } from '../src/clock';
import { measureClock, requestToken, type TokenSet } from '../src/identity-client';
import { Secret } from '../src/secret';
import { readState, tokenFileFromHeld } from '../src/token-file';
import { createTokenSink } from '../src/token-sink';
import { createLogger } from '../src/log';
import { clockOffsetAt, holdToken } from '../src/token-manager';
import { createTransport } from '../src/transport';

const terminal = { serial: 'POS-EXP-0001', modelFramework: '1', osVersion: 'Debian 12', clientId: 'exp-client-0001', clientSecret: 'exp-secret-0123456789', presharedKey: 'exp-psk-0123456789' };
let sim: IdentitySim;
beforeAll(async () => {
  sim = await startIdentitySim({ terminals: [terminal] });
});
afterAll(() => sim.close());

it('200 tokens from the simulator: expires_at is a whole second, never after exp, and at most 2 s before it', async () => {
  const transport = createTransport({ legacyServerConnect: false, timeoutSeconds: 5 });
  const grant = {
    identityUrl: sim.url,
    identity: { serial: terminal.serial, modelFramework: terminal.modelFramework },
    osVersion: terminal.osVersion,
    credentials: { clientId: terminal.clientId, clientSecret: new Secret(terminal.clientSecret), presharedKey: new Secret(terminal.presharedKey) },
  };
  const early: number[] = [];
  for (let i = 0; i < 200; i++) {
    const startedAt = systemClocks.now();
    const startedMono = systemClocks.monotonic();
    const token = await requestToken(grant, { transport, timeoutMs: 5000 });
    const file = tokenFileFromHeld(holdToken(token, startedAt, startedMono), systemClocks.now(), systemClocks.monotonic());
    expectValidTokenFile(file);
    const expiresAt = Date.parse(file.expires_at) / 1000;
    expect(Number.isInteger(expiresAt)).toBe(true);
    expect(expiresAt).toBeLessThanOrEqual(token.claims.exp as number);
    early.push((token.claims.exp as number) - expiresAt);
  }
  expect(Math.max(...early)).toBeLessThanOrEqual(2);
  console.log(`expires_at against exp over 200 tokens: ${Math.min(...early)}-${Math.max(...early)} s early, never late`);
});

describe('a clock that is off: exp is taken onto the local clock by the service\'s Date', () => {
  // Not on a whole second: the service's seconds are then up to a second behind the local milliseconds.
  const now = Date.UTC(2026, 11, 7, 10, 0, 0) + 700;
  const token = (serverSkewMs: number, expiresIn = 3600): TokenSet => ({
    accessToken: 'eyJhbGciOiJub25lIn0.e30.',
    tokenType: 'Bearer',
    expiresIn,
    // The service issued it as its clock read now + skew: exp an hour after that, in its seconds.
    claims: { nbf: Math.floor((now + serverSkewMs) / 1000), exp: Math.floor((now + serverSkewMs) / 1000) + 3600 },
    serverDate: Math.floor((now + serverSkewMs) / 1000) * 1000,
  });
  it.each([
    ['in step', 0],
    ['10 minutes behind the service', 600_000],
    ['10 minutes ahead of the service', -600_000],
  ])('local clock %s: expires_at within a second or two before the local equivalent of exp', (_name, skew) => {
    const held = holdToken(token(skew), now, 5_000);
    const file = tokenFileFromHeld(held, now, 5_000);
    const localExp = (token(skew).claims.exp as number) * 1000 - skew;
    const expiresAt = Date.parse(file.expires_at);
    expect(expiresAt).toBeLessThanOrEqual(localExp);
    expect(localExp - expiresAt).toBeLessThanOrEqual(2000);
  });

  it('a token whose stated lifetime outlasts its exp is held only until exp', () => {
    // expires_in says an hour, but the service's clock had it issued 30 minutes before its Date.
    const t = { ...token(0), claims: { nbf: now / 1000 - 1800, exp: now / 1000 + 1800 } };
    const file = tokenFileFromHeld(holdToken(t, now, 5_000), now, 5_000);
    expect(Date.parse(file.expires_at)).toBeLessThanOrEqual(now + 1800_000);
    expect(Date.parse(file.expires_at)).toBeGreaterThan(now + 1790_000);
  });
});

describe('what the POS application needs to issue a receipt: the taxpayer, B2C, and the service clock', () => {
  const tempDir = useTempDir();
  // Its own simulator: a clock 123.4 s ahead of ours, and a terminal per kind of taxpayer.
  const skewMs = 123_400;
  const base = { modelFramework: '1', osVersion: 'Debian 12', presharedKey: 'rcpt-psk-0123456789', clientSecret: 'rcpt-secret-0123456789' };
  const b2c = { ...base, serial: 'POS-RCPT-0001', clientId: 'rcpt-client-b2c', rin: '200300400', tags: ['B2B', 'B2C'] };
  const b2bOnly = { ...base, serial: 'POS-RCPT-0002', clientId: 'rcpt-client-b2b', rin: '200300401', tags: ['B2B'] };
  const untagged = { ...base, serial: 'POS-RCPT-0003', clientId: 'rcpt-client-none', tags: null };
  let skewed: IdentitySim;
  beforeAll(async () => {
    skewed = await startIdentitySim({ terminals: [b2c, b2bOnly, untagged], now: () => Date.now() + skewMs });
  });
  afterAll(() => skewed.close());

  const boot = async (t: typeof b2c | typeof untagged) => {
    const { config, tokenFile } = await provisionedIn(tempDir(), skewed.url, t);
    const run = await runBundle(['--config', config, 'boot']);
    // 123 s off is no reason to warn (that starts at 5 minutes).
    expect(run.stderr).not.toMatch(/clock/);
    expect(run.status).toBe(0);
    const file = JSON.parse(readFileSync(tokenFile, 'utf8')) as Record<string, unknown>;
    expectValidTokenFile(file);
    const status = await runBundle(['--config', config, 'status', '--json']);
    const { stdout: text } = await runBundle(['--config', config, 'status']);
    return { file, text, stderr: run.stderr, status: JSON.parse(status.stdout) as { token: Record<string, unknown>; clockOffsetSeconds?: number; clockOffsetPrecisionSeconds?: number } };
  };

  it('a B2C taxpayer: RIN, tags, taxpayer_b2c true, and the offset within its precision of the true 123.4 s, in the file and in status --json', async () => {
    const { file, status, text } = await boot(b2c);
    expect(file).toMatchObject({ taxpayer_rin: '200300400', taxpayer_tags: ['B2B', 'B2C'], taxpayer_b2c: true });
    const offset = file['clock_offset_seconds'] as number;
    const precision = file['clock_offset_precision_seconds'] as number;
    expect(Math.abs(offset - skewMs / 1000)).toBeLessThanOrEqual(precision);
    // Half a second for the Date header's whole seconds, a local round trip, the tenth.
    expect(precision).toBeGreaterThanOrEqual(0.5);
    expect(precision).toBeLessThanOrEqual(0.8);
    expect(status.token).toMatchObject({ taxpayerRin: '200300400', taxpayerTags: ['B2B', 'B2C'], b2c: true });
    expect(status).toMatchObject({ clockOffsetSeconds: offset, clockOffsetPrecisionSeconds: precision });
    expect(text).toMatch(new RegExp(`^clock: +${offset} s behind the service's \\(within ${precision} s\\)$`, 'm'));
  });

  it('a taxpayer without B2C: taxpayer_b2c false, and boot warns that it cannot submit receipts', async () => {
    const { file, status, stderr } = await boot(b2bOnly);
    expect(stderr).toMatch(/does not carry the B2C tag, so this taxpayer cannot submit receipts/);
    expect(file).toMatchObject({ taxpayer_rin: '200300401', taxpayer_tags: ['B2B'], taxpayer_b2c: false });
    expect(status.token).toMatchObject({ b2c: false });
  });

  it('a token that lists no tags: no taxpayer_tags and no taxpayer_b2c (the question is open, not "no")', async () => {
    const { file, status } = await boot(untagged);
    expect(file).not.toHaveProperty('taxpayer_tags');
    expect(file).not.toHaveProperty('taxpayer_b2c');
    expect(status.token).toMatchObject({ taxpayerTags: null, b2c: null });
  });

  it('the offset\'s precision holds: over 2,000 random exchanges the true offset is always within it, and the file\'s tenths too', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 2000; i++) {
      const trueMs = Math.round((random() - 0.5) * 2_000_000);
      const startedAt = Date.UTC(2026, 11, 7) + Math.round(random() * 86_400_000);
      // The monotonic clock is the wall clock less some constant.
      const monoBehind = Math.round(random() * 1e9);
      const rtt = Math.round(random() * 3000);
      // The service writes its Date at some moment of the exchange, in whole seconds of its clock.
      const written = startedAt + random() * rtt;
      const serverDate = Math.floor((written + trueMs) / 1000) * 1000;
      const clock = measureClock({ serverDate, claims: { nbf: serverDate / 1000 - 1 } }, startedAt - monoBehind, startedAt - monoBehind + rtt) as { serverMinusMonoMs: number; precisionMs: number };
      expect(Math.abs(clock.serverMinusMonoMs - monoBehind - trueMs)).toBeLessThanOrEqual(clock.precisionMs);
      expect(clock.precisionMs).toBeLessThanOrEqual(500 + rtt / 2);
      const t: TokenSet = { accessToken: 'eyJhbGciOiJub25lIn0.e30.', tokenType: 'Bearer', expiresIn: 3600, claims: {}, serverDate, clock };
      // Held and written later, 5 s on, the wall and monotonic clocks moving together.
      const shown = clockOffsetAt(holdToken(t, startedAt, startedAt - monoBehind), startedAt + 5000, startedAt - monoBehind + 5000) as { seconds: number; precisionSeconds: number };
      expect(Math.abs(shown.seconds * 1000 - trueMs)).toBeLessThanOrEqual(shown.precisionSeconds * 1000 + 1e-6);
    }
  });

  it('a Date that the token\'s own nbf contradicts by a minute is not the service\'s clock: no offset rather than a wrong one', () => {
    const serverDate = Date.UTC(2026, 11, 7, 10);
    expect(measureClock({ serverDate, claims: { nbf: serverDate / 1000 - 59 } }, 1000, 1010)).toBeDefined();
    expect(measureClock({ serverDate, claims: { nbf: serverDate / 1000 - 60 } }, 1000, 1010)).toBeUndefined();
    // "Date: 1" parses as 2001: a token issued now contradicts it.
    expect(measureClock({ serverDate: Date.parse('1'), claims: { nbf: serverDate / 1000 } }, 1000, 1010)).toBeUndefined();
    // Without nbf there is nothing to check it against.
    expect(measureClock({ serverDate, claims: {} }, 1000, 1010)).toEqual({ serverMinusMonoMs: serverDate + 500 - 1005, precisionMs: 505 });
  });

  it('a token without a usable Date leaves no older offset behind, in the state file or the token file', async () => {
    const dir = tempDir();
    const tokenFile = join(dir, 'run', 'token.json');
    const sink = createTokenSink({ tokenFile: () => tokenFile, clocks: systemClocks, log: createLogger({ write: () => {} }), retryWrites: false });
    const now = systemClocks.now();
    const mono = systemClocks.monotonic();
    const base: TokenSet = { accessToken: 'eyJhbGciOiJub25lIn0.e30.', tokenType: 'Bearer', expiresIn: 3600, claims: {} };
    await sink.accept(holdToken({ ...base, clock: { serverMinusMonoMs: now - mono + 1e9, precisionMs: 510 } }, now, mono));
    expect((await readState(tokenFile)).clock_offset_seconds).toBe(1e6);
    await sink.accept(holdToken(base, now, mono));
    await sink.close();
    const state = await readState(tokenFile);
    expect(state).toHaveProperty('last_success_at');
    expect(state).not.toHaveProperty('clock_offset_seconds');
    expect(state).not.toHaveProperty('clock_offset_precision_seconds');
    expect(JSON.parse(readFileSync(tokenFile, 'utf8'))).not.toHaveProperty('clock_offset_seconds');
  });

  it('the sink rewrites the token as the manager now holds it: after a long forward jump, the same expiry and no offset', async () => {
    const dir = tempDir();
    const tokenFile = join(dir, 'run', 'token.json');
    const sink = createTokenSink({ tokenFile: () => tokenFile, clocks: systemClocks, log: createLogger({ write: () => {} }), retryWrites: true });
    const now = systemClocks.now();
    const mono = systemClocks.monotonic();
    const base: TokenSet = { accessToken: 'eyJhbGciOiJub25lIn0.e30.', tokenType: 'Bearer', expiresIn: 3600, claims: {} };
    const held = holdToken({ ...base, clock: { serverMinusMonoMs: now - mono + 2_000, precisionMs: 510 } }, now, mono);
    await sink.accept(held);
    const before = JSON.parse(readFileSync(tokenFile, 'utf8')) as Record<string, unknown>;
    expect(before['clock_offset_seconds']).toBe(2);
    // What run's manager hands over after the wall clock moved an hour forward (as if just now).
    const { serverMinusMonoMs: _s, clockPrecisionMs: _p, ...rest } = held;
    await sink.rewrite({ ...rest, expiresAtMono: rest.expiresAtMono - 3600_000 });
    await sink.close();
    const after = JSON.parse(readFileSync(tokenFile, 'utf8')) as Record<string, unknown>;
    expect(after).not.toHaveProperty('clock_offset_seconds');
    expect(Date.parse(after['expires_at'] as string)).toBeLessThanOrEqual(Date.parse(before['expires_at'] as string) - 3599_000);
  });

  it('after the wall clock jumps, a rewritten file states the offset against the new wall clock', () => {
    const now = Date.UTC(2026, 11, 7, 10, 0, 0);
    // Measured at monotonic 1,000 ms, when the wall clock read `now`: the service 5.5 s ahead.
    const t: TokenSet = { accessToken: 'eyJhbGciOiJub25lIn0.e30.', tokenType: 'Bearer', expiresIn: 3600, claims: {}, serverDate: now + 5000, clock: { serverMinusMonoMs: now + 5500 - 1000, precisionMs: 510 } };
    const held = holdToken(t, now, 1_000);
    expect(tokenFileFromHeld(held, now, 1_000)).toMatchObject({ clock_offset_seconds: 5.5, clock_offset_precision_seconds: 0.6 });
    // 30 s later NTP has set the local clock 60 s forward: the service is now 54.5 s behind it.
    expect(tokenFileFromHeld(held, now + 60_000 + 30_000, 31_000)).toMatchObject({ clock_offset_seconds: -54.5 });
  });
});

describe('the token file schema (schema/token-file.schema.json) itself', () => {
  const good = {
    access_token: 'eyJhbGciOiJub25lIn0.e30.',
    token_type: 'Bearer',
    scope: 'InvoicingAPI',
    expires_at: '2026-12-07T11:00:00.000Z',
    obtained_at: '2026-12-07T10:00:00.123Z',
    taxpayer_rin: '100200300',
    taxpayer_tags: ['B2B', 'B2C'],
    taxpayer_b2c: true,
    clock_offset_seconds: -1.3,
    clock_offset_precision_seconds: 0.6,
  };
  it('takes a file as the program writes it', () => {
    expect(tokenFileProblems(good)).toEqual([]);
    const { taxpayer_rin, taxpayer_tags, taxpayer_b2c, clock_offset_seconds, clock_offset_precision_seconds, ...bare } = good;
    expect(tokenFileProblems({ ...bare, scope: null })).toEqual([]);
  });
  it.each([
    ['no expires_at', { ...good, expires_at: undefined }, /must have required property 'expires_at'/],
    ['a token_type other than Bearer', { ...good, token_type: 'bearer' }, /token_type must be equal to constant/],
    ['an expires_at that is not UTC', { ...good, expires_at: '2026-12-07T13:00:00+02:00' }, /expires_at must match pattern/],
    ['tags without taxpayer_b2c', { ...good, taxpayer_b2c: undefined }, /must have property taxpayer_b2c when property taxpayer_tags is present/],
    ['an offset without its precision', { ...good, clock_offset_precision_seconds: undefined }, /clock_offset_precision_seconds/],
    ['an access_token that is not a JWT', { ...good, access_token: 'opaque' }, /access_token must match pattern/],
    ['a field the schema does not describe', { ...good, refresh_token: 'x' }, /must NOT have additional properties \(refresh_token\)/],
  ])('refuses %s', (_name, value, problem) => {
    expect(tokenFileProblems(JSON.parse(JSON.stringify(value)))).toEqual(expect.arrayContaining([expect.stringMatching(problem)]));
  });
  it('the check of every test folder finds a token file that breaks it, however deep', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ereceipt-auth-schema-'));
    try {
      mkdirSync(join(dir, 'run', 'deeper'), { recursive: true });
      writeFileSync(join(dir, 'run', 'deeper', 'token.json'), JSON.stringify({ ...good, token_type: 'MAC' }));
      writeFileSync(join(dir, 'run', 'state.json'), JSON.stringify({ last_success_at: good.obtained_at }));
      expect(tokenFileProblemsIn(dir)).toEqual([expect.stringMatching(/deeper\/token\.json: \/token_type must be equal to constant/)]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
