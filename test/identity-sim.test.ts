import { Agent, request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey, main, startIdentitySim, verifySimToken } from './identity-sim';
import type { IdentitySim, IdentitySimOptions, SimTerminal } from './identity-sim';

const terminal: SimTerminal = {
  serial: 'SN-1234567899',
  modelFramework: '1',
  presharedKey: '03ac674216f3e15c761ee1a5e255f067953623c8b388b4459e13f978d7c846f4',
  clientId: 'd0394a9f-0607-40de-a978-2d3eb8375b04',
  clientSecret: '6d62315e-d65a-4e41-9112-4195ea834edf',
};

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json: () => Record<string, unknown>;
}

interface CallOptions {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  agent?: Agent;
}

function call(url: string, options: CallOptions = {}): Promise<Reply> {
  return new Promise((done, fail) => {
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    const req = request(
      `${url}${options.path ?? '/connect/token'}`,
      {
        method: options.method ?? 'POST',
        headers: { ...options.headers, ...(body ? { 'content-length': String(body.length) } : {}) },
        ...(options.agent ? { agent: options.agent } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', fail);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          done({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text,
            json: () => JSON.parse(text) as Record<string, unknown>,
          });
        });
      },
    );
    req.on('error', fail);
    req.end(body);
  });
}

interface TokenChange {
  headers?: Record<string, string | undefined>;
  form?: Record<string, string | undefined>;
  contentType?: string;
  agent?: Agent;
}

function defined(entries: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(entries)) if (value !== undefined) out[name] = value;
  return out;
}

function tokenRequest(sim: Pick<IdentitySim, 'url'>, change: TokenChange = {}, t: SimTerminal = terminal): Promise<Reply> {
  const headers = defined({
    'content-type': change.contentType ?? 'application/x-www-form-urlencoded',
    posserial: t.serial,
    pososversion: t.osVersion ?? 'Debian GNU/Linux 12',
    posmodelframework: t.modelFramework,
    presharedkey: t.presharedKey,
    ...change.headers,
  });
  const form = defined({
    grant_type: 'client_credentials',
    client_id: t.clientId,
    client_secret: t.clientSecret,
    ...change.form,
  });
  return call(sim.url, {
    headers,
    body: new URLSearchParams(form).toString(),
    ...(change.agent ? { agent: change.agent } : {}),
  });
}

function decodePart(token: string, index: number): Record<string, unknown> {
  const part = token.split('.')[index] ?? '';
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
}

const started: IdentitySim[] = [];

async function start(options: Partial<IdentitySimOptions> = {}): Promise<IdentitySim> {
  const sim = await startIdentitySim({ terminals: [terminal], ...options });
  started.push(sim);
  return sim;
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((sim) => sim.close()));
});

describe('metadata', () => {
  test('serves the discovery document and a JWKS holding the signing key', async () => {
    const sim = await start();
    const discovery = (await call(sim.url, { method: 'GET', path: '/.well-known/openid-configuration' })).json();
    expect(discovery).toMatchObject({
      issuer: sim.url,
      token_endpoint: `${sim.url}/connect/token`,
      jwks_uri: `${sim.url}/.well-known/openid-configuration/jwks`,
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: ['client_secret_post'],
    });
    const jwks = (await call(sim.url, { method: 'GET', path: '/.well-known/openid-configuration/jwks' })).json();
    const keys = jwks['keys'] as Array<Record<string, unknown>>;
    expect(keys).toHaveLength(1);
    const { n, e } = sim.publicKey.export({ format: 'jwk' });
    expect(keys[0]).toMatchObject({ kty: 'RSA', use: 'sig', alg: 'RS256', n, e });
    expect(typeof keys[0]?.['kid']).toBe('string');
    expect(sim.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  test('answers 404 elsewhere and 405 for other methods on the token path', async () => {
    const sim = await start();
    expect((await call(sim.url, { method: 'GET', path: '/connect/authorize' })).status).toBe(404);
    const get = await call(sim.url, { method: 'GET' });
    expect(get.status).toBe(405);
    expect(get.headers['allow']).toBe('POST');
    expect((await call(sim.url, { method: 'POST', path: '/.well-known/openid-configuration' })).status).toBe(405);
    expect(sim.tokenRequestCount()).toBe(1);
    expect(sim.requests[0]).toMatchObject({ method: 'GET', path: '/connect/token', status: 405 });
  });
});

describe('a valid login', () => {
  test('issues a Bearer JWT of the real shape, signed RS256 by the sim key', async () => {
    const sim = await start();
    const reply = await tokenRequest(sim);
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/json; charset=UTF-8');
    expect(reply.headers['cache-control']).toBe('no-store');
    expect(reply.headers['pragma']).toBe('no-cache');
    const body = reply.json();
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 3600, scope: 'InvoicingAPI' });
    const token = body['access_token'] as string;
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);

    const jwks = (await call(sim.url, { method: 'GET', path: '/.well-known/openid-configuration/jwks' })).json();
    const kid = (jwks['keys'] as Array<Record<string, unknown>>)[0]?.['kid'];
    expect(decodePart(token, 0)).toEqual({ alg: 'RS256', typ: 'at+jwt', kid });

    const payload = verifySimToken(token, sim.publicKey) as Record<string, unknown>;
    const rin = payload['TaxRin'] as string;
    expect(rin).toMatch(/^\d{9}$/);
    expect(payload).toMatchObject({
      iss: sim.url,
      aud: 'InvoicingAPI',
      scope: ['InvoicingAPI'],
      client_id: terminal.clientId,
      name: `${rin}:${terminal.clientId}`,
      TaxProfTags: ['B2B', 'B2C'],
      IsSystem: 'true',
      IsTaxRepres: 'false',
      IsIntermediary: 'false',
    });
    expect(typeof payload['TaxId']).toBe('string');
    expect(typeof payload['ProfId']).toBe('string');
    expect((payload['exp'] as number) - (payload['nbf'] as number)).toBe(3600);
    // As the real service's tokens: no iat, no sub.
    expect(payload).not.toHaveProperty('iat');
    expect(payload).not.toHaveProperty('sub');
  });

  test('verifySimToken refuses a tampered token, another key and non-tokens', async () => {
    const sim = await start();
    const token = (await tokenRequest(sim)).json()['access_token'] as string;
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const forged = Buffer.from(
      JSON.stringify({ ...decodePart(token, 1), TaxProfTags: ['B2B', 'B2C', 'X'] }),
    ).toString('base64url');
    expect(verifySimToken(`${header}.${forged}.${signature}`, sim.publicKey)).toBeUndefined();
    const flipped = (signature.startsWith('A') ? 'B' : 'A') + signature.slice(1);
    expect(verifySimToken(`${header}.${payload}.${flipped}`, sim.publicKey)).toBeUndefined();
    expect(verifySimToken(`${header}.${payload}.${signature}=`, sim.publicKey)).toBeUndefined();
    const other = await start({ signingKey: generateSigningKey() });
    expect(other.publicKey.equals(sim.publicKey)).toBe(false);
    expect(verifySimToken(token, other.publicKey)).toBeUndefined();
    expect(verifySimToken('not-a-token', sim.publicKey)).toBeUndefined();
    expect(verifySimToken('a.b.c', sim.publicKey)).toBeUndefined();
    const { createPublicKey, generateKeyPairSync } = await import('node:crypto');
    expect(verifySimToken(token, createPublicKey(generateKeyPairSync('ed25519').privateKey))).toBeUndefined();
  });

  test('accepts a charset on the content type and any OS version when none is registered', async () => {
    const sim = await start();
    const reply = await tokenRequest(sim, {
      contentType: 'Application/X-WWW-Form-Urlencoded; charset=utf-8',
      headers: { pososversion: 'anything' },
    });
    expect(reply.status).toBe(200);
  });

  test('grants the requested scopes, or all allowed ones when none is requested', async () => {
    const sim = await start({ terminals: [{ ...terminal, scopes: ['InvoicingAPI', 'ReceiptsAPI'] }] });
    expect((await tokenRequest(sim)).json()['scope']).toBe('InvoicingAPI ReceiptsAPI');
    const reply = (await tokenRequest(sim, { form: { scope: 'ReceiptsAPI' } })).json();
    expect(reply['scope']).toBe('ReceiptsAPI');
    expect(verifySimToken(reply['access_token'] as string, sim.publicKey)?.['scope']).toEqual(['ReceiptsAPI']);
  });

  test("puts the terminal's RIN and tags in TaxRin and TaxProfTags, in its order, or leaves the tags out", async () => {
    const sim = await start({
      terminals: [
        { ...terminal, rin: '100200300', tags: ['SignatureRequired', 'B2C', 'B2B'] },
        { ...terminal, clientId: 'no-tags-client', tags: null },
      ],
    });
    const token = (await tokenRequest(sim)).json()['access_token'] as string;
    expect(verifySimToken(token, sim.publicKey)).toMatchObject({ TaxRin: '100200300', name: `100200300:${terminal.clientId}`, TaxProfTags: ['SignatureRequired', 'B2C', 'B2B'] });
    const untagged = (await tokenRequest(sim, { form: { client_id: 'no-tags-client' } })).json()['access_token'] as string;
    expect(verifySimToken(untagged, sim.publicKey)).not.toHaveProperty('TaxProfTags');
  });
});

describe('lifetime and clock', () => {
  test('lifetime comes from the options, setLifetime, then the terminal override', async () => {
    const sim = await start({ lifetimeSeconds: 120 });
    const lifetimeOf = async (): Promise<[unknown, unknown]> => {
      const body = (await tokenRequest(sim)).json();
      const payload = verifySimToken(body['access_token'] as string, sim.publicKey);
      return [body['expires_in'], (payload?.['exp'] as number) - (payload?.['nbf'] as number)];
    };
    expect(await lifetimeOf()).toEqual([120, 120]);
    sim.setLifetime(5);
    expect(await lifetimeOf()).toEqual([5, 5]);
    sim.updateTerminal(terminal.clientId, { lifetimeSeconds: 42 });
    expect(await lifetimeOf()).toEqual([42, 42]);
    expect(() => sim.setLifetime(-1)).toThrow(RangeError);
  });

  test('the Date header and the token times follow options.now', async () => {
    let clock = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
    const sim = await start({ now: () => clock });
    const first = await tokenRequest(sim);
    expect(first.headers['date']).toBe('Tue, 02 Jan 2024 03:04:05 GMT');
    const nbf = Math.floor(clock / 1000);
    expect(verifySimToken(first.json()['access_token'] as string, sim.publicKey)).toMatchObject({ nbf, exp: nbf + 3600 });
    expect(sim.requests[0]?.at).toBe(clock);

    clock = Date.UTC(2031, 5, 7, 8, 9, 10);
    expect((await tokenRequest(sim, { form: { client_secret: 'wrong' } })).headers['date']).toBe(
      'Sat, 07 Jun 2031 08:09:10 GMT',
    );
    expect((await call(sim.url, { method: 'GET', path: '/nowhere' })).headers['date']).toBe(
      'Sat, 07 Jun 2031 08:09:10 GMT',
    );
  });
});

describe('rejections', () => {
  const long = (n: number): string => 'x'.repeat(n);
  const cases: Array<[string, string, TokenChange]> = [
    ['missing grant_type', 'invalid_request', { form: { grant_type: undefined } }],
    ['blank grant_type', 'invalid_request', { form: { grant_type: '  ' } }],
    ['another grant_type', 'unsupported_grant_type', { form: { grant_type: 'password' } }],
    ['posserial over 100', 'invalid_request', { headers: { posserial: long(101) } }],
    ['pososversion over 50', 'invalid_request', { headers: { pososversion: long(51) } }],
    ['posmodelframework over 10', 'invalid_request', { headers: { posmodelframework: long(11) } }],
    ['presharedkey over 200', 'invalid_request', { headers: { presharedkey: long(201) } }],
    ['grant_type over 20', 'unsupported_grant_type', { form: { grant_type: long(21) } }],
    ['client_id over 100', 'invalid_request', { form: { client_id: long(101) } }],
    ['client_secret over 100', 'invalid_request', { form: { client_secret: long(101) } }],
    ['scope over 200', 'invalid_request', { form: { scope: long(201) } }],
    ['missing client_id', 'invalid_client', { form: { client_id: undefined } }],
    ['unknown client_id', 'invalid_client', { form: { client_id: 'someone-else' } }],
    ['wrong client_secret', 'invalid_clientsecret', { form: { client_secret: 'not-the-secret' } }],
    ['missing client_secret', 'invalid_clientsecret', { form: { client_secret: undefined } }],
    ['missing posserial', 'invalid_posserial', { headers: { posserial: undefined } }],
    ['another posserial', 'invalid_posserial', { headers: { posserial: 'SN-0000000000' } }],
    ['missing pososversion', 'invalid_pososversion', { headers: { pososversion: undefined } }],
    ['missing posmodelframework', 'invalid_posmodelframework', { headers: { posmodelframework: undefined } }],
    ['another posmodelframework', 'invalid_posmodelframework', { headers: { posmodelframework: '2' } }],
    ['missing presharedkey', 'invalid_presharedkey', { headers: { presharedkey: undefined } }],
    ['wrong presharedkey', 'invalid_presharedkey', { headers: { presharedkey: 'guess' } }],
    ['a scope not allowed', 'invalid_scope', { form: { scope: 'InvoicingAPI AdminAPI' } }],
    ['wrong content type', 'invalid_request', { contentType: 'application/json' }],
    // Several faults at once: the first check in the service's order wins.
    ['wrong secret and serial', 'invalid_clientsecret', { form: { client_secret: 'x' }, headers: { posserial: 'y' } }],
    ['wrong serial and key', 'invalid_posserial', { headers: { posserial: 'y', presharedkey: 'z' } }],
  ];

  let shared: IdentitySim;
  beforeAll(async () => {
    shared = await startIdentitySim({ terminals: [terminal] });
  });
  afterAll(() => shared.close());

  test.each(cases)('%s → %s', async (_name, error, change) => {
    const sim = shared;
    const reply = await tokenRequest(sim, change);
    expect(reply.status).toBe(400);
    expect(reply.headers['content-type']).toBe('application/json; charset=UTF-8');
    expect(reply.json()['error']).toBe(error);
    expect(reply.body).not.toContain(terminal.clientSecret);
    expect(reply.body).not.toContain(terminal.presharedKey);
    expect(sim.requests.at(-1)?.error).toBe(error);
  });

  test.each([
    ['posserial', 100],
    ['client_secret', 100],
  ])('invalid_request names the field (%s) but not its value', async (field, max) => {
    const sim = await start();
    const value = `secret-${'s'.repeat(max)}`;
    const change: TokenChange = field === 'posserial' ? { headers: { posserial: value } } : { form: { client_secret: value } };
    const body = (await tokenRequest(sim, change)).json();
    expect(body['error_description']).toContain(field);
    expect(JSON.stringify(body)).not.toContain(value);
  });

  test('a repeated parameter is read as its values joined by commas, as IdentityServer does', async () => {
    const sim = await start();
    const reply = await call(sim.url, {
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        posserial: terminal.serial,
        pososversion: 'x',
        posmodelframework: terminal.modelFramework,
        presharedkey: terminal.presharedKey,
      },
      body: new URLSearchParams([
        ['grant_type', 'client_credentials'],
        ['client_id', terminal.clientId],
        ['client_id', terminal.clientId],
        ['client_secret', terminal.clientSecret],
      ]).toString(),
    });
    expect(reply.json()['error']).toBe('invalid_client');
    expect(sim.requests[0]?.form['client_id']).toBe(`${terminal.clientId},${terminal.clientId}`);
  });

  test('a field exactly at its limit passes the length check', async () => {
    const sim = await start({ terminals: [{ ...terminal, serial: 'S'.repeat(100), modelFramework: 'M'.repeat(10) }] });
    expect((await tokenRequest(sim, {}, { ...terminal, serial: 'S'.repeat(100), modelFramework: 'M'.repeat(10) })).status).toBe(200);
  });

  test('pososversion must equal the registered one when set', async () => {
    const t = { ...terminal, osVersion: 'Debian 12' };
    const sim = await start({ terminals: [t] });
    expect((await tokenRequest(sim, {}, t)).status).toBe(200);
    expect((await tokenRequest(sim, { headers: { pososversion: 'Debian 11' } }, t)).json()['error']).toBe(
      'invalid_pososversion',
    );
  });

  test('a blocked system user is unauthorized_client, and unblocking lets it in', async () => {
    const sim = await start();
    sim.updateTerminal(terminal.clientId, { blocked: true });
    const reply = await tokenRequest(sim);
    expect(reply.status).toBe(400);
    expect(reply.json()['error']).toBe('unauthorized_client');
    sim.updateTerminal(terminal.clientId, { blocked: false });
    expect((await tokenRequest(sim)).status).toBe(200);
  });

  test('invalid_client answers with invalidClientStatus', async () => {
    const sim = await start({ invalidClientStatus: 401 });
    const reply = await tokenRequest(sim, { form: { client_id: 'nobody' } });
    expect(reply.status).toBe(401);
    expect(reply.json()).toEqual({ error: 'invalid_client' });
    expect((await tokenRequest(sim, { form: { client_secret: 'x' } })).status).toBe(400);
  });

  test('a body over 16 KiB is invalid_request and the connection is closed', async () => {
    const sim = await start();
    const reply = await call(sim.url, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=client_credentials&pad=${'p'.repeat(17 * 1024)}`,
    });
    expect(reply.status).toBe(400);
    expect(reply.json()['error']).toBe('invalid_request');
    expect(reply.headers['connection']).toBe('close');
    expect((await tokenRequest(sim)).status).toBe(200);
  });

  test('headers too large for the HTTP parser get a dated 431', async () => {
    const sim = await start({ now: () => Date.UTC(2024, 0, 2) });
    const reply = await call(sim.url, { headers: { posserial: 'x'.repeat(20 * 1024) }, body: '' });
    expect(reply.status).toBe(431);
    expect(reply.headers['date']).toBe('Tue, 02 Jan 2024 00:00:00 GMT');
  });

  test('an endless body is cut off without harming the sim', async () => {
    const sim = await start();
    const outcome = await call(sim.url, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'p'.repeat(3 * 1024 * 1024),
    }).then(
      (reply) => reply.status,
      () => 'cut',
    );
    // Whether the client still reads the 400 before the cut depends on TCP timing;
    // what the sim did does not.
    expect([400, 'cut']).toContain(outcome);
    expect(sim.requests[0]).toMatchObject({ status: 400, error: 'invalid_request' });
    expect((await tokenRequest(sim)).status).toBe(200);
  });
});

describe('terminals', () => {
  test('addTerminal registers another terminal; duplicates and unknown ids throw', async () => {
    const sim = await start();
    const second = { ...terminal, clientId: 'second', serial: 'SN-2' };
    expect((await tokenRequest(sim, {}, second)).json()['error']).toBe('invalid_client');
    sim.addTerminal(second);
    expect((await tokenRequest(sim, {}, second)).status).toBe(200);
    expect(() => sim.addTerminal(second)).toThrow(/already registered/);
    expect(() => sim.updateTerminal('nobody', { blocked: true })).toThrow(/no terminal/);
  });
});

describe('faults', () => {
  test('status 429 carries Retry-After and the throttling body, then service resumes', async () => {
    const sim = await start();
    sim.injectFaults({ kind: 'status', status: 429, retryAfter: '7' });
    const reply = await tokenRequest(sim);
    expect(reply.status).toBe(429);
    expect(reply.headers['retry-after']).toBe('7');
    expect(reply.json()).toMatchObject({ error: 'Too many requests', code: 429 });
    expect((await tokenRequest(sim)).status).toBe(200);
  });

  test('status 503 answers an HTML page by default, or the given body', async () => {
    const sim = await start();
    sim.injectFaults(
      { kind: 'status', status: 503 },
      { kind: 'status', status: 500, body: 'oops', contentType: 'text/plain' },
    );
    const html = await tokenRequest(sim);
    expect(html.status).toBe(503);
    expect(html.headers['content-type']).toMatch(/^text\/html/);
    expect(html.headers['retry-after']).toBeUndefined();
    const plain = await tokenRequest(sim);
    expect([plain.status, plain.headers['content-type'], plain.body]).toEqual([500, 'text/plain', 'oops']);
  });

  test('faults are consumed in order, one per token request, before validation', async () => {
    const sim = await start();
    sim.injectFaults({ kind: 'status', status: 502 }, { kind: 'redirect', location: 'https://elsewhere.example/' });
    await call(sim.url, { method: 'GET', path: '/.well-known/openid-configuration' });
    expect((await tokenRequest(sim, { form: { client_secret: 'wrong' } })).status).toBe(502);
    const redirect = await tokenRequest(sim);
    expect(redirect.status).toBe(302);
    expect(redirect.headers['location']).toBe('https://elsewhere.example/');
    expect((await tokenRequest(sim)).status).toBe(200);
    expect(sim.requests.map((r) => r.status)).toEqual([502, 302, 200]);
    expect(sim.requests[0]?.fault).toEqual({ kind: 'status', status: 502 });
  });

  test('delay waits, then answers normally', async () => {
    const sim = await start();
    sim.injectFaults({ kind: 'delay', ms: 150 });
    const before = Date.now();
    const pending = tokenRequest(sim);
    await new Promise((r) => setTimeout(r, 50));
    expect(sim.tokenRequestCount()).toBe(1);
    expect(sim.requests[0]?.status).toBe(0);
    const reply = await pending;
    expect(Date.now() - before).toBeGreaterThanOrEqual(140);
    expect(reply.status).toBe(200);
    expect(sim.requests[0]?.status).toBe(200);
  });

  test('drop closes the connection without an answer', async () => {
    const sim = await start();
    sim.injectFaults({ kind: 'drop' });
    // The connection closed with no byte of an answer: Node's client says exactly this.
    const dropped = tokenRequest(sim);
    await expect(dropped).rejects.toThrow(/^socket hang up$/);
    await expect(dropped).rejects.toHaveProperty('code', 'ECONNRESET');
    expect(sim.requests[0]?.status).toBe(0);
    expect((await tokenRequest(sim)).status).toBe(200);
  });

  test('garbage is a 200 whose body is not JSON', async () => {
    const sim = await start();
    sim.injectFaults({ kind: 'garbage' });
    const reply = await tokenRequest(sim);
    expect(reply.status).toBe(200);
    expect(() => reply.json()).toThrow(SyntaxError);
  });

  test('huge streams a body of the asked size without a Content-Length', async () => {
    const sim = await start();
    sim.injectFaults({ kind: 'huge' }, { kind: 'huge', bytes: 100_000 }, { kind: 'huge', bytes: 5 });
    const big = await tokenRequest(sim);
    expect(big.status).toBe(200);
    expect(big.headers['content-length']).toBeUndefined();
    expect(Buffer.byteLength(big.body)).toBe(1024 * 1024);
    const smaller = await tokenRequest(sim);
    expect(smaller.body).toHaveLength(100_000);
    expect(smaller.json()).toHaveProperty('padding');
    expect((await tokenRequest(sim)).body).toHaveLength(5);
  });

  test('injectFaults refuses faults it cannot play', async () => {
    const sim = await start();
    expect(() => sim.injectFaults({ kind: 'status', status: 42 })).toThrow(RangeError);
    expect(() => sim.injectFaults({ kind: 'delay', ms: -1 })).toThrow(RangeError);
    expect((await tokenRequest(sim)).status).toBe(200);
  });
});

describe('records and shutdown', () => {
  test('records each token request with headers, form, status and error', async () => {
    const sim = await start({ now: () => 1_700_000_000_000 });
    await tokenRequest(sim, { form: { scope: 'InvoicingAPI' } });
    await tokenRequest(sim, { headers: { presharedkey: 'bad' } });
    expect(sim.tokenRequestCount()).toBe(2);
    const [ok, bad] = sim.requests;
    expect(ok).toMatchObject({
      at: 1_700_000_000_000,
      method: 'POST',
      path: '/connect/token',
      status: 200,
      form: {
        grant_type: 'client_credentials',
        client_id: terminal.clientId,
        client_secret: terminal.clientSecret,
        scope: 'InvoicingAPI',
      },
    });
    expect(ok?.headers['posserial']).toBe(terminal.serial);
    expect(ok?.error).toBeUndefined();
    expect(bad).toMatchObject({ status: 400, error: 'invalid_presharedkey' });
  });

  test('close() resolves with a keep-alive socket still open', async () => {
    const sim = await startIdentitySim({ terminals: [terminal] });
    const agent = new Agent({ keepAlive: true, keepAliveMsecs: 60_000 });
    try {
      expect((await tokenRequest(sim, { agent })).status).toBe(200);
      expect(Object.values(agent.freeSockets).flat()).toHaveLength(1);
      const before = Date.now();
      await sim.close();
      expect(Date.now() - before).toBeLessThan(1000);
      await sim.close();
    } finally {
      agent.destroy();
    }
  });

  test('close() resolves while a delayed answer is pending', async () => {
    const sim = await startIdentitySim({ terminals: [terminal] });
    sim.injectFaults({ kind: 'delay', ms: 10_000 });
    const pending = tokenRequest(sim).catch((error: Error) => error);
    await new Promise((r) => setTimeout(r, 50));
    await sim.close();
    const error = await pending;
    expect(error).toMatchObject({ code: 'ECONNRESET' });
    expect((error as Error).message).toBe('socket hang up');
  });
});

describe('command line', () => {
  test('main refuses bad usage with status 64', async () => {
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await main(['--port', '1'])).toBe(64);
      expect(await main(['--terminals', 'x.json', '--port', 'nope'])).toBe(64);
      expect(await main(['--bogus'])).toBe(64);
      expect(await main(['--terminals', join(tmpdir(), 'identity-sim-no-such-file.json')])).toBe(66);
    } finally {
      stderr.mockRestore();
    }
  });
  // Run as its own process (dist/identity-sim.js, built for Node 18): test/identity-sim-double.test.ts.
});
