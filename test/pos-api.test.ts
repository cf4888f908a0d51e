// The in-process API a Node POS application uses, over real loopback HTTP: the
// identity-service simulator for tokens, and a small receipt API that answers 401.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import { startIdentitySim, type IdentitySim } from './identity-sim';
import { parseConfig } from '../src/config';
import { writeCredentials } from '../src/credentials';
import { createTokenManager } from '../src/pos-api';
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
let api: Server;
let apiUrl: string;
/** How the receipt API answers the next requests: 401 while it has 401s queued. */
const apiAnswers: number[] = [];
const seen: { authorization: string | undefined; body: string }[] = [];

beforeAll(async () => {
  sim = await startIdentitySim({ terminals: [terminal] });
  api = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      seen.push({ authorization: req.headers.authorization, body });
      const status = apiAnswers.shift() ?? 202;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(status === 202 ? { submissionId: 'S-1' } : { error: 'invalid_token' }));
    });
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  apiUrl = `http://127.0.0.1:${(api.address() as { port: number }).port}`;
});
afterAll(async () => {
  await sim.close();
  await new Promise((resolve) => api.close(resolve));
});

async function manager() {
  const dir = tempDir();
  const config = parseConfig(
    { identityUrl: sim.url, hal: { driver: 'sim', serial: terminal.serial, modelFramework: '1' }, osVersion: 'Debian 12', credentialsFile: join(dir, 'c'), tokenFile: join(dir, 'run', 't.json') },
    join(dir, 'config.json'),
  );
  await writeCredentials(config.credentialsFile, { clientId: terminal.clientId, clientSecret: new Secret(terminal.clientSecret), presharedKey: new Secret(terminal.presharedKey) }, { serial: terminal.serial });
  return createTokenManager(config);
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
    apiAnswers.push(401);
    const res = await m.authorizedFetch(`${apiUrl}/api/v1/receiptsubmissions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: receipt });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ submissionId: 'S-1' });
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
    apiAnswers.push(401, 401, 401);
    const res = await m.authorizedFetch(`${apiUrl}/api/v1/receiptsubmissions`, { method: 'POST', body: receipt });
    expect(res.status).toBe(401);
    expect(seen).toHaveLength(2);
    expect(sim.tokenRequestCount()).toBe(logins + 1);
    apiAnswers.length = 0;
    await m.close();
  });

  it('a stream body is not replayed: the 401 goes back to the caller', async () => {
    const m = await manager();
    await m.getToken();
    const logins = sim.tokenRequestCount();
    seen.length = 0;
    apiAnswers.push(401);
    const { Readable } = await import('node:stream');
    const res = await m.authorizedFetch(`${apiUrl}/api/v1/receiptsubmissions`, { method: 'POST', body: Readable.from([receipt]) });
    expect(res.status).toBe(401);
    expect(seen).toHaveLength(1);
    expect(sim.tokenRequestCount()).toBe(logins);
    await m.close();
  });

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
});
