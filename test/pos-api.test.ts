// The in-process API a Node POS application uses, over real loopback HTTP: the
// identity-service simulator for tokens, and its receipts endpoint, which checks
// them and answers 401 (a revoked token) or 429 on demand.
import { join } from 'node:path';
import { startIdentitySim, type IdentitySim } from './identity-sim';
import { parseConfig } from '../src/config';
import { writeCredentials } from '../src/credentials';
import { systemClocks } from '../src/clock';
import { isTransient } from '../src/errors';
import { createTokenManager, type PosTokenManagerOptions } from '../src/pos-api';
import { Secret } from '../src/secret';
import { useTempDir } from './helpers/temp-dir';

const tempDir = useTempDir();
const terminal = {
  serial: 'POS-API-0001',
  modelFramework: '1',
  osVersion: 'Debian 12',
  clientId: 'api-client-0001',
  clientSecret: 'api-secret-0123456789',
  presharedKey: 'api-psk-0123456789',
};
let sim: IdentitySim;
let apiUrl: string;
/** What the receipts endpoint received: the bearer token and the body. */
const seen: { authorization: string | undefined; body: string }[] = [];

beforeAll(async () => {
  sim = await startIdentitySim({
    terminals: [terminal],
    onReceipt: (r) => seen.push({ authorization: r.token === undefined ? undefined : `Bearer ${r.token}`, body: r.body.toString('utf8') }),
  });
  apiUrl = sim.url;
});
afterAll(() => sim.close());

async function manager(options: PosTokenManagerOptions = {}, identityUrl = sim.url) {
  const dir = tempDir();
  const config = parseConfig(
    { identityUrl, hal: { driver: 'sim', serial: terminal.serial, modelFramework: '1' }, osVersion: 'Debian 12', credentialsFile: join(dir, 'c'), tokenFile: join(dir, 'run', 't.json') },
    join(dir, 'config.json'),
  );
  await writeCredentials(config.credentialsFile, { clientId: terminal.clientId, clientSecret: new Secret(terminal.clientSecret), presharedKey: new Secret(terminal.presharedKey) }, { serial: terminal.serial });
  return createTokenManager(config, options);
}

const receipt = JSON.stringify({ receipts: [{ header: { uuid: 'abc' } }] });

describe('createTokenManager', () => {
  it('getToken: one login shared by concurrent callers, then the held token', async () => {
    const m = await manager();
    const before = sim.tokenRequestCount();
    const tokens = await Promise.all(Array.from({ length: 20 }, () => m.getToken()));
    expect(new Set(tokens).size).toBe(1);
    expect(await m.getToken()).toBe(tokens[0]);
    expect(sim.tokenRequestCount()).toBe(before + 1);
    await m.close();
  });

  it('authorizedFetch: a 401 leads to exactly one new login and one replay', async () => {
    const m = await manager();
    const first = await m.getToken();
    const logins = sim.tokenRequestCount();
    seen.length = 0;
    sim.injectReceiptFaults({ status: 401 });
    const res = await m.authorizedFetch(`${apiUrl}/api/v1/receiptsubmissions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: receipt });
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ acceptedDocuments: [{ uuid: 'abc' }], rejectedDocuments: [] });
    expect(sim.tokenRequestCount()).toBe(logins + 1);
    expect(seen).toHaveLength(2);
    expect(seen[0]).toEqual({ authorization: `Bearer ${first}`, body: receipt });
    const second = await m.getToken();
    expect(second).not.toBe(first);
    expect(seen[1]).toEqual({ authorization: `Bearer ${second}`, body: receipt });
    await m.close();
  });

  it('authorizedFetch: a second 401 is returned to the caller, never a loop', async () => {
    const m = await manager();
    await m.getToken();
    const logins = sim.tokenRequestCount();
    seen.length = 0;
    sim.injectReceiptFaults({ status: 401 }, { status: 401 });
    const res = await m.authorizedFetch(`${apiUrl}/api/v1/receiptsubmissions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: receipt });
    expect(res.status).toBe(401);
    expect(seen).toHaveLength(2);
    expect(sim.tokenRequestCount()).toBe(logins + 1);
    await m.close();
  });

  it('a stream body is not replayed: the 401 goes back to the caller', async () => {
    const m = await manager();
    await m.getToken();
    const logins = sim.tokenRequestCount();
    seen.length = 0;
    sim.injectReceiptFaults({ status: 401 });
    const { Readable } = await import('node:stream');
    const res = await m.authorizedFetch(`${apiUrl}/api/v1/receiptsubmissions`, { method: 'POST', body: Readable.from([receipt]) });
    expect(res.status).toBe(401);
    expect(seen).toHaveLength(1);
    expect(sim.tokenRequestCount()).toBe(logins);
    await m.close();
  });

  it('forceRefresh: a new token now, one login for concurrent callers; a stale token\'s caller gets the new one', async () => {
    const m = await manager();
    const first = await m.getToken();
    const before = sim.tokenRequestCount();
    const [a, b] = await Promise.all([m.forceRefresh(first), m.forceRefresh(first)]);
    expect(a).toBe(b);
    expect(a).not.toBe(first);
    expect(sim.tokenRequestCount()).toBe(before + 1);
    // Asked again with the token it replaced: the current one, no login.
    expect(await m.forceRefresh(first)).toBe(a);
    expect(sim.tokenRequestCount()).toBe(before + 1);
    await m.close();
  });

  it.each([
    ['a Uint8Array', () => new TextEncoder().encode(receipt)],
    ['an ArrayBuffer', () => new TextEncoder().encode(receipt).buffer],
    ['a DataView', () => new DataView(new TextEncoder().encode(receipt).buffer)],
    ['a Buffer', () => Buffer.from(receipt)],
  ])('%s body is replayed byte for byte after a 401', async (_name, body) => {
    const m = await manager();
    await m.getToken();
    seen.length = 0;
    sim.injectReceiptFaults({ status: 401 });
    const res = await m.authorizedFetch(`${apiUrl}/api/v1/receiptsubmissions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body() as never });
    expect(res.status).toBe(202);
    expect(seen.map((s) => s.body)).toEqual([receipt, receipt]);
    expect(seen[0]?.authorization).not.toBe(seen[1]?.authorization);
    await m.close();
  });

  it('close() is not an outage: a getToken waiting on a login, and every call after, reject with ERR_CLOSED', async () => {
    const m = await manager();
    sim.injectFaults({ kind: 'delay', ms: 2000 });
    const pending = m.getToken();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    await m.close();
    const error = await pending.catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(error).toMatchObject({ code: 'ERR_CLOSED' });
    expect(isTransient(error)).toBe(false);
    await expect(m.getToken()).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    await expect(m.authorizedFetch(`${apiUrl}/api/v1/receiptsubmissions`)).rejects.toMatchObject({ code: 'ERR_CLOSED' });
  });

  it('silent by default: nothing on the host\'s stderr; a logger the application passes hears it all', async () => {
    const writes: string[] = [];
    const original = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array) => (writes.push(String(chunk)), true)) as typeof process.stderr.write;
    sim.updateTerminal(terminal.clientId, { presharedKey: 'changed-on-the-portal' });
    const lines: string[] = [];
    try {
      const quiet = await manager();
      await expect(quiet.getToken()).rejects.toMatchObject({ code: 'ERR_CREDENTIALS_REJECTED' });
      await quiet.close();
      const heard = await manager({ log: { error: (l) => lines.push(`error ${l}`), warn: (l) => lines.push(`warn ${l}`), info: (l) => lines.push(`info ${l}`) } });
      await expect(heard.getToken()).rejects.toMatchObject({ code: 'ERR_CREDENTIALS_REJECTED' });
      await heard.close();
    } finally {
      process.stderr.write = original;
      sim.updateTerminal(terminal.clientId, { presharedKey: terminal.presharedKey });
    }
    expect(writes).toEqual([]);
    expect(lines).toEqual([expect.stringMatching(/^error presharedkey rejected by the identity service \(invalid_presharedkey\): re-run provisioning; will ask again about every 15 minutes$/)]);
  });

  it('recovery on demand: callers every 250 ms get a token within 3 s of the service\'s return after a 10 s outage', async () => {
    // Its own simulator, stopped and started again on the same port; the jitter pinned
    // near its ceiling, so the planned retry alone would come seconds later.
    const own = await startIdentitySim({ terminals: [terminal] });
    const port = Number(new URL(own.url).port);
    const m = await manager({ clocks: { ...systemClocks, random: () => 0.99 } }, own.url);
    let service: IdentitySim | undefined;
    try {
      await own.close();
      const outageStarted = Date.now();
      let backAt = 0;
      let gotAt = 0;
      const failures: unknown[] = [];
      while (gotAt === 0 && Date.now() - outageStarted < 20_000) {
        if (!service && Date.now() - outageStarted >= 10_000) {
          service = await startIdentitySim({ terminals: [terminal], port });
          backAt = Date.now();
        }
        await m.getToken().then(
          () => (gotAt = Date.now()),
          (error: unknown) => failures.push(error),
        );
        if (gotAt === 0) await new Promise((resolve) => setTimeout(resolve, 250));
      }
      const recovery = gotAt - backAt;
      const logins = m.state().requests;
      console.log(`recovery on demand: token ${recovery} ms after the service came back from a 10 s outage; ${failures.length} calls failed meanwhile, every one transient; ${logins} logins in all`);
      expect(failures.every((e) => isTransient(e))).toBe(true);
      expect(backAt).toBeGreaterThan(0);
      expect(recovery).toBeLessThan(3000);
      // Still bounded: some 40 asks made at most one login each 2 s, plus the planned retries.
      expect(failures.length).toBeGreaterThan(30);
      expect(logins).toBeLessThanOrEqual(Math.ceil((gotAt - outageStarted) / 2000) + 5);
    } finally {
      await m.close();
      await service?.close();
    }
  }, 30_000);

  it('a rejected login reaches the caller as the coded error', async () => {
    const m = await manager();
    sim.updateTerminal(terminal.clientId, { presharedKey: 'changed-on-the-portal' });
    try {
      await expect(m.getToken()).rejects.toMatchObject({ code: 'ERR_CREDENTIALS_REJECTED', oauthError: 'invalid_presharedkey' });
      expect(m.state()).toMatchObject({ rejected: true });
    } finally {
      sim.updateTerminal(terminal.clientId, { presharedKey: terminal.presharedKey });
      await m.close();
    }
  });

  it('tokens the service revoked: the next submission logs in once more and is replayed, and every later one uses the new token', async () => {
    const m = await manager();
    const first = await m.getToken();
    sim.revokeTokens();
    const logins = sim.tokenRequestCount();
    const mark = sim.receipts.length;
    const post = () => m.authorizedFetch(`${apiUrl}/api/v1/receiptsubmissions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: receipt });
    // Five at once meet the revoked token: one login serves them all.
    const answers = await Promise.all(Array.from({ length: 5 }, post));
    expect(answers.map((r) => r.status)).toEqual([202, 202, 202, 202, 202]);
    expect(sim.tokenRequestCount()).toBe(logins + 1);
    const seenHere = sim.receipts.slice(mark);
    expect(seenHere.filter((r) => r.status === 401).map((r) => r.token)).toEqual(Array(5).fill(first));
    expect(seenHere.filter((r) => r.status === 202)).toHaveLength(5);
    expect((await post()).status).toBe(202);
    expect(sim.tokenRequestCount()).toBe(logins + 1);
    await m.close();
  });

  it('a 429 is the caller\'s: returned with its Retry-After, no login and no replay', async () => {
    const m = await manager();
    await m.getToken();
    const logins = sim.tokenRequestCount();
    const mark = sim.receipts.length;
    sim.injectReceiptFaults({ status: 429, retryAfter: '7' });
    const res = await m.authorizedFetch(`${apiUrl}/api/v1/receiptsubmissions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: receipt });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(await res.json()).toMatchObject({ code: 429 });
    expect(sim.receipts.length - mark).toBe(1);
    expect(sim.tokenRequestCount()).toBe(logins);
    await m.close();
  });

  it('state() says who the taxpayer is, whether it may submit receipts, and the service\'s clock offset with its precision', async () => {
    const m = await manager();
    await m.getToken();
    const state = m.state();
    expect(state.token).toMatchObject({ taxpayerRin: expect.stringMatching(/^\d{9}$/), taxpayerTags: ['B2B', 'B2C'], b2c: true });
    // The simulator shares this clock: the offset is within its precision of 0.
    const offset = state.clockOffset as { seconds: number; precisionSeconds: number };
    expect(Math.abs(offset.seconds)).toBeLessThanOrEqual(offset.precisionSeconds);
    expect(offset.precisionSeconds).toBeGreaterThanOrEqual(0.5);
    expect(offset.precisionSeconds).toBeLessThanOrEqual(0.8);
    await m.close();
  });

  it('a taxpayer without B2C: state() says so, and the receipts endpoint answers 403, which is not a token problem (no login)', async () => {
    const m = await manager();
    sim.updateTerminal(terminal.clientId, { tags: ['B2B'] });
    try {
      await m.getToken();
      expect(m.state().token).toMatchObject({ taxpayerTags: ['B2B'], b2c: false });
      const logins = sim.tokenRequestCount();
      const res = await m.authorizedFetch(`${apiUrl}/api/v1/receiptsubmissions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: receipt });
      expect(res.status).toBe(403);
      expect(sim.tokenRequestCount()).toBe(logins);
    } finally {
      sim.updateTerminal(terminal.clientId, { tags: ['B2B', 'B2C'] });
      await m.close();
    }
  });
});
