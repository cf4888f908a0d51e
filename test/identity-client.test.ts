// The Authenticate POS request through the real transport (node-fetch, real
// agents) against the simulator and small servers on 127.0.0.1, never a mocked fetch.
import { constants as cryptoConstants } from 'node:crypto';
import type { Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { join } from 'node:path';
import { startIdentitySim, verifySimToken, type IdentitySim, type SimTerminal } from './identity-sim';
import { EreceiptError } from '../src/errors';
import { parseRetryAfter, requestToken, type TokenGrant } from '../src/identity-client';
import { Secret } from '../src/secret';
import { createAgents, createTransport } from '../src/transport';
import { useTempDir } from './helpers/temp-dir';

const tempDir = useTempDir();
const terminal: SimTerminal = {
  serial: 'POS-IC-0001',
  modelFramework: '7',
  osVersion: 'Debian 12',
  clientId: 'client-ic-0001',
  clientSecret: 'secret-ic-0001-abcdef',
  presharedKey: 'psk-ic-0001-abcdef',
  scopes: ['InvoicingAPI', 'ReceiptsAPI'],
};
const transport = createTransport({ legacyServerConnect: false, timeoutSeconds: 5 });
let sim: IdentitySim;

beforeAll(async () => {
  sim = await startIdentitySim({ terminals: [terminal, { ...terminal, clientId: 'blocked-client', blocked: true }] });
});
afterAll(() => sim.close());

function grant(changes: Partial<{ serial: string; modelFramework: string; osVersion: string; clientId: string; clientSecret: string; presharedKey: string; scope: string }> = {}): TokenGrant {
  return {
    identityUrl: sim.url,
    identity: { serial: changes.serial ?? terminal.serial, modelFramework: changes.modelFramework ?? terminal.modelFramework },
    osVersion: changes.osVersion ?? 'Debian 12',
    credentials: {
      clientId: changes.clientId ?? terminal.clientId,
      clientSecret: new Secret(changes.clientSecret ?? terminal.clientSecret),
      presharedKey: new Secret(changes.presharedKey ?? terminal.presharedKey),
    },
    ...(changes.scope ? { scope: changes.scope } : {}),
  };
}

async function failure(g: TokenGrant, options: { timeoutMs?: number } = {}): Promise<EreceiptError> {
  const error = await requestToken(g, { transport, timeoutMs: options.timeoutMs ?? 5000 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(EreceiptError);
  return error as EreceiptError;
}

describe('success', () => {
  it('returns the token, its lifetime, scope and claims, and sends exactly the seed request', async () => {
    const token = await requestToken(grant({ scope: 'InvoicingAPI' }), { transport, timeoutMs: 5000 });
    expect(token).toMatchObject({ tokenType: 'Bearer', expiresIn: 3600, scope: 'InvoicingAPI', claims: { scope: 'InvoicingAPI', taxpayerTags: ['B2B', 'B2C'], taxpayerRin: expect.stringMatching(/^\d{9}$/) } });
    expect(verifySimToken(token.accessToken, sim.publicKey)).toMatchObject({ client_id: terminal.clientId });
    expect(Math.abs((token.serverDate ?? 0) - Date.now())).toBeLessThan(5000);
    const record = sim.requests[sim.requests.length - 1];
    expect(record?.form).toEqual({ grant_type: 'client_credentials', client_id: terminal.clientId, client_secret: terminal.clientSecret, scope: 'InvoicingAPI' });
    expect(record?.headers).toMatchObject({ posserial: 'POS-IC-0001', pososversion: 'Debian 12', posmodelframework: '7', presharedkey: terminal.presharedKey });
  });
});

describe('rejections: exit 77, with the refused value and the remedy', () => {
  it.each([
    ['invalid_posserial', { serial: 'POS-OTHER' }, /^serial number POS-OTHER rejected by the identity service \(invalid_posserial\): check that the terminal is registered/],
    ['invalid_pososversion', { osVersion: 'Windows 95' }, /^OS version "Windows 95" rejected by the identity service \(invalid_pososversion\): set osVersion/],
    ['invalid_posmodelframework', { modelFramework: '9' }, /^model framework 9 rejected by the identity service \(invalid_posmodelframework\)/],
    ['invalid_presharedkey', { presharedKey: 'wrong-psk-value' }, /^presharedkey rejected by the identity service \(invalid_presharedkey\): re-run provisioning$/],
    ['invalid_clientsecret', { clientSecret: 'wrong-secret-value' }, /^client_secret rejected by the identity service \(invalid_clientsecret\): re-run provisioning$/],
    ['invalid_client', { clientId: 'nobody-knows-me' }, /^client_id \.\.\.s-me rejected by the identity service \(invalid_client\)/],
    ['unauthorized_client', { clientId: 'blocked-client' }, /^client_id \.\.\.ient is not allowed to sign in \(unauthorized_client.*blocked or expired/],
    ['invalid_scope', { scope: 'AdminAPI' }, /^scope "AdminAPI" rejected by the identity service \(invalid_scope\): fix or remove scope/],
    ['invalid_request', { osVersion: 'x'.repeat(51) }, /^identity service refused the request as malformed \(invalid_request - .*pososversion.*\)/],
  ])('%s', async (code, changes, message) => {
    const error = await failure(grant(changes));
    expect(error).toMatchObject({ code: 'ERR_CREDENTIALS_REJECTED', exitStatus: 77, oauthError: code, httpStatus: 400 });
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain(terminal.clientSecret);
    expect(error.message).not.toContain(terminal.presharedKey);
  });

  it.each([
    ['unsupported_grant_type', 400],
    ['invalid_client', 401],
    ['invalid_request', 400],
  ])('%s with HTTP %i', async (code, status) => {
    sim.injectFaults({ kind: 'status', status, body: JSON.stringify({ error: code }) });
    const error = await failure(grant());
    expect(error).toMatchObject({ code: 'ERR_CREDENTIALS_REJECTED', exitStatus: 77, oauthError: code, httpStatus: status });
  });

  it('an unknown 400 is a rejection too; a description that echoes a secret is redacted', async () => {
    sim.injectFaults({ kind: 'status', status: 400, body: JSON.stringify({ error: 'invalid_grant', error_description: `bad key ${terminal.presharedKey}\nreally` }) });
    const error = await failure(grant());
    expect(error.code).toBe('ERR_CREDENTIALS_REJECTED');
    expect(error.message).toBe('identity service refused the request (HTTP 400, invalid_grant - bad key [redacted] really): check identityUrl and re-run provisioning');
  });

  it('invalid_client answered with 401 by the simulator', async () => {
    const strict = await startIdentitySim({ terminals: [terminal], invalidClientStatus: 401 });
    try {
      const error = await requestToken({ ...grant({ clientId: 'unknown-client' }), identityUrl: strict.url }, { transport, timeoutMs: 5000 }).catch((e: EreceiptError) => e);
      expect(error).toMatchObject({ code: 'ERR_CREDENTIALS_REJECTED', oauthError: 'invalid_client', httpStatus: 401 });
    } finally {
      await strict.close();
    }
  });
});

it("the token's own lifetime (exp - nbf) wins over a longer expires_in", async () => {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const jwt = `${part({ alg: 'RS256' })}.${part({ nbf: 1000, exp: 1600 })}.c2ln`;
  sim.injectFaults({ kind: 'status', status: 200, body: JSON.stringify({ access_token: jwt, token_type: 'Bearer', expires_in: 3600 }) });
  expect((await requestToken(grant(), { transport, timeoutMs: 5000 })).expiresIn).toBe(600);
  sim.injectFaults({ kind: 'status', status: 200, body: JSON.stringify({ access_token: jwt, token_type: 'Bearer', expires_in: 300 }) });
  expect((await requestToken(grant(), { transport, timeoutMs: 5000 })).expiresIn).toBe(300);
});

it('a token that arrives with less than 2.5 s of its life left is a transient failure, not a token', async () => {
  sim.setLifetime(12);
  try {
    // The wall clock as the request sees it: 10 s pass between the request leaving and the answer arriving.
    let calls = 0;
    const now = () => 1_000_000 + (calls++ === 0 ? 0 : 10_000);
    const error = await requestToken(grant(), { transport, timeoutMs: 5000, now }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_SERVICE_UNAVAILABLE', httpStatus: 200 });
    expect((error as Error).message).toBe('identity service answered too slowly: the token had 2 s of its life left when it arrived: try again later');
    // The same answer with 3 s left is a token.
    calls = 0;
    const fast = () => 1_000_000 + (calls++ === 0 ? 0 : 9000);
    await expect(requestToken(grant(), { transport, timeoutMs: 5000, now: fast })).resolves.toMatchObject({ expiresIn: 12 });
  } finally {
    sim.setLifetime(3600);
  }
});

describe('transient failures: exit 75, Retry-After honoured', () => {
  it.each([
    [429, '30', 30_000, /^identity service is busy \(HTTP 429, asks to wait 30 s\): try again later$/],
    [503, '5', 5_000, /^identity service is busy \(HTTP 503, asks to wait 5 s\)/],
    [503, undefined, undefined, /^identity service is busy \(HTTP 503\)/],
    [500, undefined, undefined, /^identity service is failing \(HTTP 500\)/],
    [502, '1', 1_000, /^identity service is failing \(HTTP 502, asks to wait 1 s\)/],
    [408, undefined, undefined, /^identity service is failing \(HTTP 408\)/],
    [404, undefined, undefined, /^identity service answered HTTP 404 without an OAuth error at http:\/\/127\.0\.0\.1:\d+\/connect\/token: check identityUrl/],
  ])('HTTP %i, Retry-After %p', async (status, retryAfter, retryAfterMs, message) => {
    sim.injectFaults({ kind: 'status', status, ...(retryAfter ? { retryAfter } : {}) });
    const error = await failure(grant());
    expect(error).toMatchObject({ code: 'ERR_SERVICE_UNAVAILABLE', exitStatus: 75, httpStatus: status, retryAfterMs });
    expect(error.message).toMatch(message);
  });

  it.each([400, 401, 403])('HTTP %i without an OAuth error (a proxy, a portal) is transient, not a rejection', async (status) => {
    sim.injectFaults({ kind: 'status', status, body: '<html><body>Access denied by proxy</body></html>', contentType: 'text/html' });
    const error = await failure(grant());
    expect(error).toMatchObject({ code: 'ERR_SERVICE_UNAVAILABLE', exitStatus: 75, httpStatus: status });
    expect(error.message).toMatch(/without an OAuth error .*try again later/);
  });

  it('a Retry-After date is measured against the server clock', async () => {
    const date = new Date(Date.now() + 3_600_000 + 20_000).toUTCString();
    const serverNow = Date.now() + 3_600_000;
    expect(parseRetryAfter(date, serverNow)).toBeGreaterThan(18_000);
    expect(parseRetryAfter(date, serverNow)).toBeLessThanOrEqual(21_000);
    expect(parseRetryAfter('soon', serverNow)).toBeUndefined();
    expect(parseRetryAfter('999999', serverNow)).toBe(3_600_000);
  });

  it('a redirect is never followed', async () => {
    const before = sim.tokenRequestCount();
    sim.injectFaults({ kind: 'redirect', location: `${sim.url}/connect/token` });
    const error = await failure(grant());
    expect(error.message).toMatch(/redirected the request to http:\/\/127\.0\.0\.1:\d+\/connect\/token, which is never followed: check identityUrl/);
    expect(sim.tokenRequestCount()).toBe(before + 1);
  });

  it.each([
    [{ kind: 'garbage' as const }, /without a usable token \(the body is not JSON\)/],
    [{ kind: 'status' as const, status: 200, body: JSON.stringify({ access_token: 'opaque', token_type: 'Bearer', expires_in: 3600 }) }, /access_token is not a JWT/],
    [{ kind: 'status' as const, status: 200, body: JSON.stringify({ access_token: 'a.b.c', token_type: 'MAC', expires_in: 3600 }) }, /token_type is not Bearer/],
    [{ kind: 'status' as const, status: 200, body: JSON.stringify({ access_token: 'a.b.c', token_type: 'bearer', expires_in: -1 }) }, /expires_in is not a positive number/],
    [{ kind: 'status' as const, status: 200, body: JSON.stringify({ access_token: 'a.b.c', token_type: 'Bearer', expires_in: '3600' }) }, /expires_in is not a positive number/],
    [{ kind: 'status' as const, status: 200, body: JSON.stringify({ access_token: 'a.b.c', token_type: 'Bearer', expires_in: 1e14 }) }, /expires_in is over 7 days/],
    [{ kind: 'huge' as const }, /answered with a body over 64 KiB/],
    [{ kind: 'drop' as const }, /is unreachable \(ECONNRESET\)/],
  ])('%j', async (fault, message) => {
    sim.injectFaults(fault);
    const error = await failure(grant());
    expect(error.code).toBe('ERR_SERVICE_UNAVAILABLE');
    expect(error.message).toMatch(message);
  });

  it('the whole request is bounded by its timeout', async () => {
    sim.injectFaults({ kind: 'delay', ms: 2000 });
    const started = Date.now();
    const error = await failure(grant(), { timeoutMs: 300 });
    expect(Date.now() - started).toBeLessThan(1500);
    expect(error.message).toMatch(/^identity service at 127\.0\.0\.1:\d+ did not answer within 0\.3 s: check the network; try again later$/);
  });

  it('the connection, TLS handshake included, is bounded by the connect timeout', async () => {
    // Accepts TCP, never says a TLS word: only the connect timeout (a third of 3 s) can end it.
    const sockets = new Set<import('node:net').Socket>();
    const silent: TcpServer = createTcpServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const slow = createTransport({ legacyServerConnect: false, timeoutSeconds: 3 });
      const started = Date.now();
      const url = `https://127.0.0.1:${(silent.address() as { port: number }).port}`;
      const error = await requestToken({ ...grant(), identityUrl: url }, { transport: slow, timeoutMs: 3000 }).catch((e: EreceiptError) => e);
      expect(Date.now() - started).toBeLessThan(2500);
      expect((error as EreceiptError).message).toMatch(/is unreachable \(ECONNECT_TIMEOUT\)/);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

it('asks for an uncompressed answer, and still reads one compressed anyway', async () => {
  const { gzipSync } = await import('node:zlib');
  const { createServer } = await import('node:http');
  const seen: (string | undefined)[] = [];
  const body = gzipSync(JSON.stringify({ access_token: 'eyJhbGciOiJub25lIn0.eyJzY29wZSI6Ikludm9pY2luZ0FQSSJ9.', token_type: 'Bearer', expires_in: 3600 }));
  const server = createServer((req, res) => {
    seen.push(req.headers['accept-encoding']);
    req.resume().on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const token = await requestToken({ ...grant(), identityUrl: url }, { transport, timeoutMs: 5000 });
    expect(token).toMatchObject({ tokenType: 'Bearer', expiresIn: 3600, scope: 'InvoicingAPI' });
    expect(seen).toEqual(['identity']);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('TLS', () => {
  let server: Server;
  let url: string;
  let caFile: string;

  beforeAll(async () => {
    // A committed self-signed certificate for 127.0.0.1 (test/fixtures/tls/README.md says how it was made).
    const key = join(__dirname, 'fixtures', 'tls', 'key.pem');
    caFile = join(__dirname, 'fixtures', 'tls', 'cert.pem');
    const body = JSON.stringify({ access_token: 'eyJhbGciOiJub25lIn0.eyJzY29wZSI6Ikludm9pY2luZ0FQSSJ9.', token_type: 'Bearer', expires_in: 3600, scope: 'InvoicingAPI' });
    const { readFileSync } = await import('node:fs');
    server = createHttpsServer({ key: readFileSync(key), cert: readFileSync(caFile) }, (req, res) => {
      req.resume().on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  it('trusts a server signed by the configured caFile', async () => {
    const t = createTransport({ caFile, legacyServerConnect: false, timeoutSeconds: 5 });
    const token = await requestToken({ ...grant(), identityUrl: url }, { transport: t, timeoutMs: 5000 });
    expect(token.scope).toBe('InvoicingAPI');
  });

  it('refuses it without the caFile, and says what to check', async () => {
    const error = await requestToken({ ...grant(), identityUrl: url }, { transport, timeoutMs: 5000 }).catch((e: EreceiptError) => e);
    expect((error as EreceiptError).code).toBe('ERR_SERVICE_UNAVAILABLE');
    expect((error as EreceiptError).message).toMatch(/^TLS connection to the identity service at 127\.0\.0\.1:\d+ failed \(\w+\): check caFile in the configuration and the clock$/);
  });

  it("legacyServerConnect sets OpenSSL's option on the TLS agent, and only when asked", async () => {
    const flag = cryptoConstants.SSL_OP_LEGACY_SERVER_CONNECT;
    expect((createAgents({ legacyServerConnect: true }, 1000).https.options.secureOptions ?? 0) & flag).toBe(flag);
    expect((createAgents({ legacyServerConnect: false }, 1000).https.options.secureOptions ?? 0) & flag).toBe(0);
    const t = createTransport({ caFile, legacyServerConnect: true, timeoutSeconds: 5 });
    await expect(requestToken({ ...grant(), identityUrl: url }, { transport: t, timeoutMs: 5000 })).resolves.toMatchObject({ tokenType: 'Bearer' });
  });

  it('an unreadable caFile is a configuration error', async () => {
    const t = createTransport({ caFile: join(tempDir(), 'missing.pem'), legacyServerConnect: false, timeoutSeconds: 5 });
    const error = await requestToken({ ...grant(), identityUrl: url }, { transport: t, timeoutMs: 5000 }).catch((e: EreceiptError) => e);
    expect(error).toMatchObject({ code: 'ERR_CONFIG' });
  });
});
