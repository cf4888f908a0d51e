// The simulator as an integrator's test double: its receipts endpoint (the bearer
// token checked strictly; 401, 403, 429 and faults on demand), its control endpoint
// (off unless asked for), and dist/identity-sim.js as a library and as a command.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSigningKey, startIdentitySim, type IdentitySim, type IdentitySimOptions } from './identity-sim';
import { useTempDir } from './helpers/temp-dir';

const tempDir = useTempDir();
const terminal = { serial: 'POS-DBL-0001', modelFramework: '1', clientId: 'dbl-client-0001', clientSecret: 'dbl-secret-0123456789', presharedKey: 'dbl-psk-0123456789', rin: '300400500' };
const b2bOnly = { ...terminal, serial: 'POS-DBL-0002', clientId: 'dbl-client-0002', tags: ['B2B'] };
const SIM_JS = join(__dirname, '..', 'dist', 'identity-sim.js');

let clock = Date.now();
const sims: IdentitySim[] = [];
async function start(options: Partial<IdentitySimOptions> = {}): Promise<IdentitySim> {
  const sim = await startIdentitySim({ terminals: [terminal, b2bOnly], now: () => clock, ...options });
  sims.push(sim);
  return sim;
}
afterAll(() => Promise.all(sims.map((s) => s.close())));
beforeEach(() => {
  clock = Date.now();
});

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: () => Record<string, unknown>;
}
async function call(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  const { default: fetch } = await import('node-fetch');
  const res = await fetch(url, { method: init.method ?? 'POST', headers: init.headers ?? {}, ...(init.body === undefined ? {} : { body: init.body }) });
  const text = await res.text();
  return { status: res.status, headers: res.headers as unknown as Headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

async function token(sim: IdentitySim, t: typeof terminal = terminal): Promise<string> {
  const res = await call(`${sim.url}/connect/token`, {
    headers: { 'content-type': 'application/x-www-form-urlencoded', posserial: t.serial, pososversion: 'Debian 12', posmodelframework: t.modelFramework, presharedkey: t.presharedKey },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: t.clientId, client_secret: t.clientSecret }).toString(),
  });
  expect(res.status).toBe(200);
  return res.json()['access_token'] as string;
}

const receipt = (extra: Record<string, unknown> = {}) => ({ header: { uuid: 'u-1', receiptNumber: 'R-1', dateTimeIssued: new Date(clock - 60_000).toISOString() }, seller: { rin: terminal.rin }, ...extra });
function submit(sim: IdentitySim, bearer: string | undefined, body: unknown = { receipts: [receipt()] }, contentType = 'application/json'): Promise<Answer> {
  return call(`${sim.url}/api/v1/receiptsubmissions`, {
    headers: { 'content-type': contentType, ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('POST /api/v1/receiptsubmissions', () => {
  it('a valid token: 202 with a submission id, each receipt accepted', async () => {
    const sim = await start();
    const res = await submit(sim, await token(sim));
    expect(res.status).toBe(202);
    expect(res.json()).toMatchObject({ submissionId: expect.stringMatching(/^[0-9A-F]{26}$/), acceptedDocuments: [{ uuid: 'u-1', receiptNumber: 'R-1' }], rejectedDocuments: [] });
    expect(sim.receipts.at(-1)).toMatchObject({ status: 202, tokenId: expect.any(String) });
  });

  it.each([
    ['no Authorization', undefined, /^Bearer$/],
    ['a token that is not a JWT', 'opaque', /error="invalid_token", error_description="The signature is invalid"/],
  ])('401 for %s, with WWW-Authenticate', async (_name, bearer, challenge) => {
    const sim = await start();
    const res = await submit(sim, bearer);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(challenge);
  });

  it('401 for a token signed by another key (another simulator, a forgery)', async () => {
    const other = await start({ signingKey: generateSigningKey() });
    const sim = await start();
    const res = await submit(sim, await token(other));
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/The signature is invalid/);
  });

  it('401 once the token has expired, to the second, with no leeway; and before its nbf', async () => {
    const sim = await start({ lifetimeSeconds: 60 });
    clock = Math.floor(clock / 1000) * 1000;
    const t = await token(sim);
    clock += 59_999;
    expect((await submit(sim, t)).status).toBe(202);
    clock += 1;
    const expired = await submit(sim, t);
    expect(expired.status).toBe(401);
    expect(expired.headers.get('www-authenticate')).toMatch(/The token expired at '/);
    clock -= 120_000;
    expect((await submit(sim, t)).headers.get('www-authenticate')).toMatch(/not valid yet/);
  });

  it('a revoked token is refused from then on, a new one is taken', async () => {
    const sim = await start();
    const t = await token(sim);
    sim.revokeTokens();
    expect((await submit(sim, t)).headers.get('www-authenticate')).toMatch(/revoked/);
    expect((await submit(sim, t)).status).toBe(401);
    expect((await submit(sim, await token(sim))).status).toBe(202);
  });

  it('an injected 401 revokes the token presented; an injected 429 comes before the token is even looked at', async () => {
    const sim = await start();
    const t = await token(sim);
    sim.injectReceiptFaults({ status: 429, retryAfter: '3' }, { status: 401 }, { status: 503, retryAfter: '9' });
    const throttled = await submit(sim, 'not-even-a-token');
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toBe('3');
    expect(throttled.json()).toEqual({ error: 'Too many requests', message: 'Rate limit exceeded. Try again later.', code: 429 });
    expect((await submit(sim, t)).status).toBe(401);
    const fresh = await token(sim);
    const failing = await submit(sim, fresh);
    expect([failing.status, failing.headers.get('retry-after')]).toEqual([503, '9']);
    expect((await submit(sim, fresh)).status).toBe(202);
    expect((await submit(sim, t)).status).toBe(401);
  });

  it('by chance: 429s and revocations at the rates set, never a revocation in a token\'s first second', async () => {
    let draws = 0;
    // A fixed sequence: 0.9, 0.1, 0.9, 0.1…
    const sim = await start({ random: () => (draws++ % 2 === 0 ? 0.9 : 0.1), receipts: { throttleRate: 0.5, revokeRate: 0.5, retryAfter: '2' } });
    const t = await token(sim);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await submit(sim, t)).status);
    // Throttle draws 0.9, 0.1, 0.9, 0.1; no revocation is drawn while the token is under a second old.
    expect(statuses).toEqual([202, 429, 202, 429]);
    clock += 1000;
    const afterGrace = await submit(sim, t);
    expect(afterGrace.status).toBe(401);
    expect(afterGrace.headers.get('www-authenticate')).toMatch(/revoked/);
  });

  it('403 for a taxpayer without B2C; 415 for a body that is not JSON; 400 without receipts; 405 for GET', async () => {
    const sim = await start();
    const noB2c = await submit(sim, await token(sim, b2bOnly));
    expect(noB2c.status).toBe(403);
    expect(noB2c.json()).toMatchObject({ error: { code: 'Forbidden' } });
    const t = await token(sim);
    expect((await submit(sim, t, 'receipts=1', 'application/x-www-form-urlencoded')).status).toBe(415);
    expect((await submit(sim, t, { receipts: [] })).status).toBe(400);
    expect((await call(`${sim.url}/api/v1/receiptsubmissions`, { method: 'GET', headers: { authorization: `Bearer ${t}` } })).status).toBe(405);
  });

  it('a receipt from another taxpayer, or dated in the service\'s future, is rejected; the others accepted', async () => {
    const sim = await start();
    const later = new Date(clock + 5_000).toISOString();
    const res = await submit(sim, await token(sim), {
      receipts: [receipt(), receipt({ seller: { rin: '999999999' } }), receipt({ header: { uuid: 'u-3', dateTimeIssued: later } })],
    });
    expect(res.status).toBe(202);
    const body = res.json() as { acceptedDocuments: unknown[]; rejectedDocuments: { uuid: string; error: { code: string } }[] };
    expect(body.acceptedDocuments).toHaveLength(1);
    expect(body.rejectedDocuments.map((r) => r.error.code)).toEqual(['IssuerMismatch', 'DateTimeIssuedInFuture']);
  });
});

describe('the control endpoint /_sim/control', () => {
  it('is not there unless asked for', async () => {
    const sim = await start();
    expect((await call(`${sim.url}/_sim/control`, { method: 'GET' })).status).toBe(404);
    expect((await call(`${sim.url}/_sim/control`, { body: '{"revokeTokens":true}' })).status).toBe(404);
  });

  it('sets token faults, lifetimes, rejections, receipt answers and revocations while the simulator runs', async () => {
    const sim = await start({ control: true });
    const t = await token(sim);
    const control = (body: unknown) => call(`${sim.url}/_sim/control`, { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const set = await control({
      faults: [{ kind: 'status', status: 503, retryAfter: '4' }],
      lifetimeSeconds: 120,
      receiptFaults: [{ status: 429, retryAfter: '6' }],
      receipts: { revokeRate: 0 },
      revokeTokens: true,
    });
    expect(set.status).toBe(200);
    expect(set.json()).toMatchObject({ lifetimeSeconds: 120, queuedFaults: 1, receipts: { queuedFaults: 1, revokeRate: 0 } });
    const down = await call(`${sim.url}/connect/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
    expect([down.status, down.headers.get('retry-after')]).toEqual([503, '4']);
    expect((await submit(sim, t)).status).toBe(429);
    expect((await submit(sim, t)).status).toBe(401);
    const fresh = await token(sim);
    expect(JSON.parse(Buffer.from(fresh.split('.')[1] as string, 'base64url').toString())).toMatchObject({ TaxRin: '300400500' });
    expect((await submit(sim, fresh)).status).toBe(202);
    // A rejection: the system user blocked on the portal.
    expect((await control({ terminals: [{ clientId: terminal.clientId, blocked: true }] })).status).toBe(200);
    const refused = await call(`${sim.url}/connect/token`, {
      headers: { 'content-type': 'application/x-www-form-urlencoded', posserial: terminal.serial, pososversion: 'x', posmodelframework: '1', presharedkey: terminal.presharedKey },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: terminal.clientId, client_secret: terminal.clientSecret }).toString(),
    });
    expect([refused.status, refused.json()['error']]).toEqual([400, 'unauthorized_client']);
    const state = await call(`${sim.url}/_sim/control`, { method: 'GET' });
    expect(state.json()).toMatchObject({ tokenRequests: 4, receipts: { submissions: 3, byStatus: { 202: 1, 401: 1, 429: 1 } } });
  });

  it('stays up whatever a POST asks: header values that cannot be sent, a redirect with nowhere to go, a body that is not text', async () => {
    const sim = await start({ control: true });
    const control = (body: unknown) => call(`${sim.url}/_sim/control`, { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    for (const fault of [{ kind: 'redirect' }, { kind: 'status', status: 503, retryAfter: 'a\nb' }, { kind: 'status', status: 503, body: 5 }, { kind: 'status', status: 200, contentType: 'x\r\ny: z' }, { kind: 'delay', ms: 1e12 }]) {
      const res = await control({ faults: [fault] });
      expect([res.status, fault]).toEqual([400, fault]);
    }
    expect((await control({ faults: [{ kind: 'status', status: 503, retryAfter: 'soon, maybe' }] })).status).toBe(200);
    const odd = await call(`${sim.url}/connect/token`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
    expect([odd.status, odd.headers.get('retry-after')]).toEqual([503, 'soon, maybe']);
    expect((await token(sim)).length).toBeGreaterThan(100);
  });

  it('takes only application/json, so a web page cannot post to it unasked', async () => {
    const sim = await start({ control: true });
    const form = await call(`${sim.url}/_sim/control`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '{"lifetimeSeconds":5}' });
    expect(form.status).toBe(415);
    expect((await call(`${sim.url}/_sim/control`, { method: 'GET' })).json()).toMatchObject({ lifetimeSeconds: 3600 });
  });

  it.each([
    ['not JSON', 'lifetime=5', /not JSON/],
    ['an unknown key', { lifetimeSeconds: 5, reboot: true }, /reboot is not something the control endpoint sets/],
    ['a fault of no known kind', { lifetimeSeconds: 5, faults: [{ kind: 'explode' }] }, /faults\[0\] needs a kind/],
    ['a negative lifetime', { lifetimeSeconds: -1 }, /lifetimeSeconds must be a number of seconds/],
    ['an unknown terminal', { lifetimeSeconds: 5, terminals: [{ clientId: 'nobody' }] }, /registered clientId/],
    ['a rate over 1', { lifetimeSeconds: 5, receipts: { throttleRate: 1.5 } }, /throttleRate must be a fraction/],
    ['a receipt fault of 200', { lifetimeSeconds: 5, receiptFaults: [{ status: 200 }] }, /status from 400 to 599/],
    ['a Retry-After that is neither seconds nor a date', { lifetimeSeconds: 5, receipts: { retryAfter: 'soon' } }, /retryAfter must be/],
  ])('refuses %s with 400 and applies nothing', async (_name, body, message) => {
    const sim = await start({ control: true, lifetimeSeconds: 3600 });
    const res = await call(`${sim.url}/_sim/control`, { headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    expect(res.status).toBe(400);
    expect(res.json()['error']).toMatch(message);
    expect((await call(`${sim.url}/_sim/control`, { method: 'GET' })).json()).toMatchObject({ lifetimeSeconds: 3600, queuedFaults: 0, receipts: { throttleRate: 0 } });
  });
});

describe('dist/identity-sim.js', () => {
  const node = (args: string[], input?: string) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.on('close', (status) => {
        clearTimeout(timer);
        resolve({ status, stdout, stderr });
      });
      child.stdin.end(input ?? '');
    });

  it('required, it is a library: it starts nothing, and Node exits at once', async () => {
    const run = await node(['-e', `const sim = require(${JSON.stringify(SIM_JS)}); console.log(Object.keys(sim).sort().join(' '))`]);
    expect(run).toMatchObject({ status: 0, stderr: '' });
    expect(run.stdout).toMatch(/CONTROL_PATH .*main .*startIdentitySim verifySimToken/);
    expect(run.stdout).not.toMatch(/listening/);
  });

  it('run with --tags, --rin, --lifetime and --control: serves tokens of that taxpayer and the control endpoint until SIGTERM', async () => {
    const terminals = join(tempDir(), 'terminals.json');
    writeFileSync(terminals, JSON.stringify([{ ...terminal, rin: undefined }]));
    const child = spawn(process.execPath, [SIM_JS, '--terminals', terminals, '--tags', 'B2B', '--rin', '123123123', '--lifetime', '90', '--control'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    try {
      const url = await new Promise<string>((done, fail) => {
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const match = /^listening (\S+)\n/.exec(out);
          if (match?.[1]) done(match[1]);
        });
        child.on('exit', () => fail(new Error(`exited before listening: ${out}`)));
      });
      const t = await token({ url } as IdentitySim);
      expect(JSON.parse(Buffer.from(t.split('.')[1] as string, 'base64url').toString())).toMatchObject({ TaxRin: '123123123', TaxProfTags: ['B2B'] });
      expect((await call(`${url}/_sim/control`, { method: 'GET' })).json()).toMatchObject({ lifetimeSeconds: 90, tokenRequests: 1 });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });

  it('--help documents every flag; a bad one is status 64', async () => {
    const help = await node([SIM_JS, '--help']);
    expect(help.status).toBe(0);
    for (const flag of ['--terminals', '--port', '--host', '--lifetime', '--tags', '--rin', '--control']) expect(help.stdout).toContain(flag);
    expect((await node([SIM_JS, '--terminals', 'x.json', '--tags', 'a b'])).status).toBe(64);
  });
});
