// The token file's expires_at: a reader that trusts it to the end must never hold a
// token the service no longer honours (its `exp`), whatever the two clocks say.
import { startIdentitySim, type IdentitySim } from './identity-sim';
import { systemClocks } from '../src/clock';
import { requestToken, type TokenSet } from '../src/identity-client';
import { Secret } from '../src/secret';
import { tokenFileFromHeld } from '../src/token-file';
import { holdToken } from '../src/token-manager';
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
