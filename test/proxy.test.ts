// Reaching the identity service through a shop's HTTP proxy: the built bundle against
// the simulator over HTTPS, through a real CONNECT proxy on 127.0.0.1 (the `proxy`
// package), and through proxies that refuse, vanish or never answer.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { createProxy } from 'proxy';
import { startIdentitySim, type IdentitySim, type SimTerminal } from './identity-sim';
import { BUNDLE, runBundle } from './helpers/bundle';
import { provisionedIn } from './helpers/provisioned';
import { useTempDir } from './helpers/temp-dir';
import { requestToken } from '../src/identity-client';
import { Secret } from '../src/secret';
import { createTransport } from '../src/transport';

const tempDir = useTempDir();
const TLS = join(__dirname, 'fixtures', 'tls');
const CA_FILE = join(TLS, 'cert.pem');
const terminal: SimTerminal = {
  serial: 'POS-PROXY-0001',
  modelFramework: '1',
  osVersion: 'Debian 12',
  clientId: 'proxy-client-000001',
  clientSecret: 'proxy-secret-0123456789',
  presharedKey: 'proxy-psk-0123456789abcdef',
  rin: '100200300',
  tags: ['B2B', 'B2C'],
};
const PROXY_USER = 'shop';
const PROXY_PASSWORD = 'Pr0xy-Pa55word-7731';

/** A CONNECT proxy that records what it is asked and every byte a client sends it. */
interface RecordingProxy {
  url: string;
  address: string;
  connects: string[];
  sent: () => Buffer;
  close: () => Promise<void>;
}

async function recordingProxy(password?: string): Promise<RecordingProxy> {
  const server = createProxy(createHttpServer());
  const connects: string[] = [];
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  if (password !== undefined) {
    const expected = `Basic ${Buffer.from(`${PROXY_USER}:${password}`).toString('base64')}`;
    server.authenticate = (req: IncomingMessage) => req.headers['proxy-authorization'] === expected;
  }
  server.on('connect', (req: IncomingMessage) => connects.push(req.url ?? ''));
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  });
  const address = await listen(server);
  return {
    url: `http://${address}`,
    address,
    connects,
    sent: () => Buffer.concat(chunks),
    close: () => closeServer(server, sockets),
  };
}

/** A "proxy" that answers every CONNECT with `status`, or (`status` undefined) never answers at all. */
async function refusingProxy(status?: number): Promise<{ url: string; address: string; open: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.once('data', () => {
      if (status !== undefined) socket.end(`HTTP/1.1 ${status} No\r\nContent-Type: application/json\r\nContent-Length: 29\r\n\r\n{"error":"invalid_client"}\r\n`);
    });
  });
  const address = await listen(server);
  return { url: `http://${address}`, address, open: () => sockets.size, close: () => closeServer(server, sockets) };
}

async function listen(server: Server | NetServer): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as { port: number }).port}`;
}

function closeServer(server: Server | NetServer, sockets: Set<Socket>): Promise<void> {
  for (const socket of sockets) socket.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

let sim: IdentitySim;
let proxy: RecordingProxy;
let guarded: RecordingProxy;
/** A port nothing listens on. */
let deadProxy: string;

beforeAll(async () => {
  sim = await startIdentitySim({ terminals: [terminal], tls: { key: readFileSync(join(TLS, 'key.pem')), cert: readFileSync(CA_FILE) } });
  proxy = await recordingProxy();
  guarded = await recordingProxy(PROXY_PASSWORD);
  const dead = await refusingProxy(502);
  deadProxy = dead.url;
  await dead.close();
});
afterAll(async () => {
  await Promise.all([proxy.close(), guarded.close(), sim.close()]);
});

const provisioned = (overrides: Record<string, unknown> = {}) => provisionedIn(tempDir(), sim.url, terminal, { caFile: CA_FILE, timeoutSeconds: 3, ...overrides });

const SECRETS = [terminal.clientSecret, terminal.presharedKey, PROXY_PASSWORD, encodeURIComponent(PROXY_PASSWORD), Buffer.from(`${PROXY_USER}:${PROXY_PASSWORD}`).toString('base64')];
function expectNoSecret(...texts: string[]): void {
  for (const text of texts) for (const secret of SECRETS) expect(text).not.toContain(secret);
}

it('boot through HTTPS_PROXY: one CONNECT to the identity service, TLS end to end, and status names the proxy and the variable', async () => {
  const s = await provisioned();
  const before = proxy.connects.length;
  const requests = sim.requests.length;
  const boot = await runBundle(['--config', s.config, 'boot'], { env: { HTTPS_PROXY: proxy.url } });
  expect(boot.stderr).toMatch(/^ereceipt-auth: authenticated terminal POS-PROXY-0001 for taxpayer RIN 100200300/);
  expect(boot.status).toBe(0);
  expect(proxy.connects.slice(before)).toEqual([new URL(sim.url).host]);
  expect(sim.requests.length).toBe(requests + 1);
  // The proxy carried the TLS session and never saw the request itself.
  const seen = proxy.sent().toString('latin1');
  expect(seen).toContain(`CONNECT ${new URL(sim.url).host} HTTP/1.1`);
  expect(seen).not.toContain('/connect/token');
  expectNoSecret(seen);

  const status = await runBundle(['--config', s.config, 'status'], { env: { HTTPS_PROXY: proxy.url } });
  expect(status.stdout).toContain(`proxy:        ${proxy.address} (from HTTPS_PROXY)\n`);
  const json = await runBundle(['--config', s.config, 'status', '--json'], { env: { https_proxy: proxy.url } });
  expect(JSON.parse(json.stdout).proxy).toEqual({ used: true, address: proxy.address, source: 'https_proxy' });
  const direct = await runBundle(['--config', s.config, 'status', '--json']);
  expect(JSON.parse(direct.stdout).proxy).toEqual({ used: false, reason: 'none set' });
});

it('the configuration\'s proxy wins over the variables, and "proxy": "" turns them off', async () => {
  const configured = await provisioned({ proxy: proxy.url });
  const before = proxy.connects.length;
  const boot = await runBundle(['--config', configured.config, 'boot', '--wait', '0'], { env: { HTTPS_PROXY: deadProxy } });
  expect(boot.status).toBe(0);
  expect(proxy.connects.length).toBe(before + 1);
  const status = await runBundle(['--config', configured.config, 'status'], { env: { HTTPS_PROXY: deadProxy } });
  expect(status.stdout).toContain(`proxy:        ${proxy.address} (from the configuration)\n`);

  const off = await provisioned({ proxy: '' });
  const direct = await runBundle(['--config', off.config, 'boot', '--wait', '0'], { env: { HTTPS_PROXY: deadProxy, ALL_PROXY: deadProxy } });
  expect(direct.status).toBe(0);
  expect(proxy.connects.length).toBe(before + 1);
  const offStatus = await runBundle(['--config', off.config, 'status'], { env: { HTTPS_PROXY: deadProxy } });
  expect(offStatus.stdout).toContain('proxy:        none (turned off in the configuration ("proxy": ""))\n');
});

it('NO_PROXY leaves the identity host out, and status says why no proxy is used', async () => {
  const s = await provisioned();
  const before = proxy.connects.length;
  const env = { HTTPS_PROXY: proxy.url, NO_PROXY: 'localhost,127.0.0.1' };
  expect((await runBundle(['--config', s.config, 'boot', '--wait', '0'], { env })).status).toBe(0);
  expect(proxy.connects.length).toBe(before);
  const status = await runBundle(['--config', s.config, 'status'], { env });
  expect(status.stdout).toContain('proxy:        none (NO_PROXY leaves out 127.0.0.1 (HTTPS_PROXY is set))\n');
});

it('a proxy that asks for credentials gets them from the URL; a refusal (407) is transient and names the proxy, never its credentials', async () => {
  const s = await provisioned();
  const good = `http://${PROXY_USER}:${encodeURIComponent(PROXY_PASSWORD)}@${guarded.address}`;
  const ok = await runBundle(['--config', s.config, 'boot', '--wait', '0'], { env: { HTTPS_PROXY: good } });
  expect(ok.status).toBe(0);
  expect(guarded.sent().toString('latin1')).toContain(`Proxy-Authorization: Basic ${Buffer.from(`${PROXY_USER}:${PROXY_PASSWORD}`).toString('base64')}`);

  const wrong = `http://${PROXY_USER}:wrong-${encodeURIComponent(PROXY_PASSWORD)}@${guarded.address}`;
  const refused = await runBundle(['--config', s.config, 'boot', '--wait', '0'], { env: { HTTPS_PROXY: wrong } });
  expect(refused.status).toBe(75);
  expect(refused.stderr).toBe(
    `ereceipt-auth: error: proxy ${guarded.address} (from HTTPS_PROXY) asks for credentials it was not given or refused them (HTTP 407): check the user and password in the proxy setting\n`,
  );
  const status = await runBundle(['--config', s.config, 'status', '--json'], { env: { HTTPS_PROXY: wrong } });
  expect(JSON.parse(status.stdout)).toMatchObject({ proxy: { used: true, address: guarded.address, source: 'HTTPS_PROXY' }, lastError: { code: 'ERR_SERVICE_UNAVAILABLE' } });
  const configured = await provisioned({ proxy: good });
  const viaConfig = await runBundle(['--config', configured.config, 'status'], { env: {} });
  expectNoSecret(ok.stderr, refused.stderr, status.stdout, viaConfig.stdout, viaConfig.stderr, readFileSync(join(s.dir, 'run', 'state.json'), 'utf8'));
  expect(viaConfig.stdout).toContain(`proxy:        ${guarded.address} (from the configuration)\n`);
});

describe('a proxy that fails is a transient failure that names the proxy, not the identity service', () => {
  it.each([
    [403, 'forbids the tunnel (HTTP 403)'],
    [502, 'could not reach the identity service (HTTP 502)'],
    [418, `refused the tunnel to ${'HOST'} (HTTP 418)`],
  ])('CONNECT answered %i', async (code, what) => {
    const refusing = await refusingProxy(code);
    try {
      const s = await provisioned();
      const boot = await runBundle(['--config', s.config, 'boot', '--wait', '0'], { env: { HTTPS_PROXY: refusing.url } });
      expect(boot.status).toBe(75);
      // Even with an OAuth error in its body, a proxy's refusal is never taken for the service's verdict (77).
      expect(boot.stderr).toMatch(
        new RegExp(`^ereceipt-auth: error: proxy ${refusing.address} \\(from HTTPS_PROXY\\) ${what.replace('HOST', new URL(sim.url).host).replace(/[()]/g, '\\$&')}: check the proxy`),
      );
    } finally {
      await refusing.close();
    }
  });

  it('nothing listening: unreachable, at once', async () => {
    const s = await provisioned();
    const boot = await runBundle(['--config', s.config, 'boot', '--wait', '0'], { env: { HTTPS_PROXY: deadProxy } });
    expect(boot.status).toBe(75);
    expect(boot.stderr).toBe(
      `ereceipt-auth: error: proxy ${new URL(deadProxy).host} (from HTTPS_PROXY) is unreachable (ECONNREFUSED): check the proxy setting and the network; try again later\n`,
    );
    expect(boot.ms).toBeLessThan(2000);
  });

  it('a proxy that never answers: given up within the connect share of the timeout, and the program exits', async () => {
    const silent = await refusingProxy();
    try {
      const s = await provisioned({ timeoutSeconds: 3 });
      const boot = await runBundle(['--config', s.config, 'boot', '--wait', '0'], { env: { HTTPS_PROXY: silent.url } });
      expect(boot.status).toBe(75);
      expect(boot.stderr).toBe(
        `ereceipt-auth: error: proxy ${silent.address} (from HTTPS_PROXY) did not open a tunnel to ${new URL(sim.url).host} within 1 s: check the proxy; try again later\n`,
      );
      expect(boot.ms).toBeLessThan(2500);
    } finally {
      await silent.close();
    }
  });
});

it('a proxy setting that is not an http:// proxy is a configuration error (78) that names where it was set, not its value', async () => {
  const s = await provisioned();
  const cases: [Record<string, string>, Record<string, unknown>, string][] = [
    [
      { HTTPS_PROXY: `https://${PROXY_USER}:${PROXY_PASSWORD}@proxy.shop.lan:3128` },
      {},
      'the HTTPS_PROXY variable is an https:// proxy, which is not supported (the identity service is reached through an HTTP CONNECT tunnel, TLS end to end)',
    ],
    [{ https_proxy: `socks5://proxy.shop.lan:1080` }, {}, 'the https_proxy variable is not an http:// proxy'],
    [{}, { proxy: `http://${PROXY_USER}:${PROXY_PASSWORD}@proxy.shop.lan:3128/path` }, 'the proxy in the configuration has more than a host and a port'],
  ];
  for (const [env, overrides, message] of cases) {
    const config = JSON.parse(readFileSync(s.config, 'utf8'));
    writeFileSync(s.config, JSON.stringify({ ...config, ...overrides }));
    const boot = await runBundle(['--config', s.config, 'boot', '--wait', '0'], { env });
    expect(boot.status).toBe(78);
    expect(boot.stderr).toBe(`ereceipt-auth: error: ${message}: give it as http://host:port (user:password@ before the host if the proxy asks for them)\n`);
    expectNoSecret(boot.stderr);
  }
  writeFileSync(s.config, JSON.stringify({ ...JSON.parse(readFileSync(s.config, 'utf8')), proxy: 3128 }));
  const boot = await runBundle(['--config', s.config, 'boot']);
  expect(boot.status).toBe(78);
  expect(boot.stderr).toBe(`ereceipt-auth: error: configuration file ${s.config} has proxy that is not a string: fix the file\n`);
});

it('without a proxy the proxy code is never loaded: a dist/ without proxy-agent.js boots, and says what to copy once a proxy is set', async () => {
  const s = await provisioned();
  const dist = join(tempDir(), 'dist');
  mkdirSync(dist);
  copyFileSync(BUNDLE, join(dist, 'ereceipt-auth.js'));
  const direct = await runAt(dist, s.config, {});
  expect(direct.status).toBe(0);
  const proxied = await runAt(dist, s.config, { HTTPS_PROXY: proxy.url });
  expect(proxied.status).toBe(78);
  expect(proxied.stderr).toMatch(/^ereceipt-auth: error: a proxy variable is set, but the proxy support cannot be loaded \(.*proxy-agent\.js.*\): copy proxy-agent\.js beside ereceipt-auth\.js\n$/);
});

/** The bundle copied to `dist`, run there. */
function runAt(dist: string, config: string, env: Record<string, string>): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(dist, 'ereceipt-auth.js'), '--config', config, 'boot', '--wait', '0'], { env: { PATH: process.env['PATH'], ...env } });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

describe('the transport in process (the Node API uses it too)', () => {
  const grant = () => ({
    identityUrl: sim.url,
    identity: { serial: terminal.serial, modelFramework: terminal.modelFramework },
    osVersion: 'Debian 12',
    credentials: { clientId: terminal.clientId, clientSecret: new Secret(terminal.clientSecret), presharedKey: new Secret(terminal.presharedKey) },
  });

  it('a token through the configured proxy; a TLS failure at the far end of the tunnel says it went through the proxy', async () => {
    const before = proxy.connects.length;
    const transport = createTransport({ caFile: CA_FILE, legacyServerConnect: false, timeoutSeconds: 5, proxy: proxy.url });
    await expect(requestToken(grant(), { transport, timeoutMs: 5000 })).resolves.toMatchObject({ tokenType: 'Bearer' });
    expect(proxy.connects.length).toBe(before + 1);

    const untrusting = createTransport({ legacyServerConnect: false, timeoutSeconds: 5, proxy: proxy.url });
    const error = await requestToken(grant(), { transport: untrusting, timeoutMs: 5000 }).catch((e: Error) => e);
    expect((error as Error).message).toMatch(
      new RegExp(`^TLS connection to the identity service at ${new URL(sim.url).host.replace(/\./g, '\\.')} \\(through the proxy ${proxy.address.replace(/\./g, '\\.')}\\) failed \\(\\w+\\): check caFile`),
    );
  });

  it('a request given up while the proxy is silent leaves no socket behind', async () => {
    const silent = await refusingProxy();
    try {
      const transport = createTransport({ caFile: CA_FILE, legacyServerConnect: false, timeoutSeconds: 30, proxy: silent.url });
      const error = await requestToken(grant(), { transport, timeoutMs: 300 }).catch((e: Error) => e);
      expect((error as Error).message).toBe(`identity service at ${new URL(sim.url).host} (through the proxy ${silent.address}) did not answer within 0.3 s: check the network; try again later`);
      // The connection to the proxy is closed, not left waiting for an answer that never comes.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(silent.open()).toBe(0);
    } finally {
      await silent.close();
    }
  });
});
