// The SysV/BusyBox init script, run as init would run it (start, status, reload,
// stop), with its paths pointed at the built dist/ and a temp dir, against the
// identity-service simulator. The systemd unit is checked by systemd-analyze.
import { execFile, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { startIdentitySim, type IdentitySim } from './identity-sim';
import { isAlive } from '../src/pid';
import { BUNDLE, runBundle } from './helpers/bundle';
import { needs, pathWithout } from './helpers/needs';
import { stageForOtherUser } from './helpers/other-user';
import { useTempDir } from './helpers/temp-dir';

const tempDir = useTempDir();
const SCRIPT = join(__dirname, '..', 'scripts', 'init', 'ereceipt-auth.sh');
const UNIT = join(__dirname, '..', 'scripts', 'init', 'ereceipt-auth.service');
const terminal = {
  serial: 'POS-INIT-0001',
  modelFramework: '1',
  osVersion: 'Debian 12',
  clientId: 'init-client-0001',
  clientSecret: 'init-secret-0123456789',
  presharedKey: 'init-psk-0123456789',
};
let sim: IdentitySim;
beforeAll(async () => {
  sim = await startIdentitySim({ terminals: [terminal] });
});
afterAll(() => sim.close());

/** The shell init runs the script with: dash (`sh`) here, BusyBox ash (`busybox sh`) on small images. */
type Shell = readonly string[];
const SH: Shell = ['sh'];

function initd(env: Record<string, string>, action: string, shell: Shell = SH): Promise<{ status: number | null; output: string; ms: number; closed: boolean }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(shell[0] as string, [...shell.slice(1), SCRIPT, action], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d));
    child.stderr.on('data', (d: Buffer) => (output += d));
    // A shell that cannot be started fails the test at once, not at its timeout.
    child.on('error', (error) => reject(new Error(`cannot run ${shell.join(' ')}: ${error.message}`)));
    // `start` leaves the supervisor running; its output must close all the same, soon
    // after the script exits (dpkg and an ssh session wait for that): `closed` says.
    let closed = false;
    child.on('close', () => (closed = true));
    child.on('exit', (status) => {
      const ms = Date.now() - started;
      const until = Date.now() + 2000;
      const check = () => (closed || Date.now() > until ? resolve({ status, output, ms, closed }) : setTimeout(check, 20));
      check();
    });
  });
}

async function waitFor(what: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!what()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function setup(identityUrl: string, serviceUser = '') {
  const dir = tempDir();
  if (serviceUser) {
    // As on a terminal: the service user owns its folders; the test (root) provisions.
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'lib'), { mode: 0o700 });
    chownSync(join(dir, 'lib'), 65534, 65534);
  }
  const config = join(dir, 'config.json');
  const runDir = join(dir, 'run');
  writeFileSync(
    config,
    JSON.stringify({
      identityUrl,
      hal: { driver: 'sim', serial: terminal.serial, modelFramework: '1' },
      osVersion: 'Debian 12',
      credentialsFile: join(dir, 'lib', 'credentials'),
      tokenFile: join(runDir, 'token.json'),
      timeoutSeconds: 2,
    }),
  );
  const input = `client_id=${terminal.clientId}\nclient_secret=${terminal.clientSecret}\npresharedkey=${terminal.presharedKey}\n`;
  expect((await runBundle(['--config', config, 'provision', '--stdin', '--offline'], { input })).status).toBe(0);
  if (serviceUser) chmodSync(config, 0o644);
  const staged = serviceUser ? stageForOtherUser(dir) : { node: process.execPath, dist: join(BUNDLE, '..') };
  const env = { NODE: staged.node, DIR: staged.dist, CONFIG: config, SERVICE_USER: serviceUser, RUN_DIR: runDir, PIDFILE: join(dir, 'ereceipt-auth.pid'), BOOT_WAIT: '3', RESPAWN_DELAY: '1' };
  return { dir, env, tokenFile: join(runDir, 'token.json'), pidFile: env.PIDFILE };
}

it('start boots and supervises run; status, reload and stop work; stop leaves nothing running', async () => {
  const { env, tokenFile, pidFile } = await setup(sim.url);
  const before = sim.tokenRequestCount();
  const start = await initd(env, 'start');
  expect(start.status).toBe(0);
  expect(start.output).toMatch(/ereceipt-auth: started \(pid \d+\)/);
  // Nothing it left running holds its caller's output open.
  expect(start.closed).toBe(true);
  expect(existsSync(tokenFile)).toBe(true);
  const supervisor = Number(readFileSync(pidFile, 'utf8'));
  expect(isAlive(supervisor)).toBe(true);
  await waitFor(() => sim.tokenRequestCount() >= before + 2, 5000); // boot, then run's own login
  expect(await initd(env, 'status')).toMatchObject({ status: 0, output: `ereceipt-auth is running (pid ${supervisor})\n` });

  const status = JSON.parse((await runBundle(['--config', env.CONFIG, 'status', '--json'])).stdout) as { service: { running: boolean; pid: number } };
  expect(status.service.running).toBe(true);
  const runPid = status.service.pid;

  const beforeReload = sim.tokenRequestCount();
  expect((await initd(env, 'reload')).status).toBe(0);
  await waitFor(() => sim.tokenRequestCount() > beforeReload, 5000);

  // A `run` that dies is started again by the supervisor.
  process.kill(runPid, 'SIGKILL');
  await waitFor(() => {
    const s = JSON.parse(readFileSync(join(tokenFile, '..', 'state.json'), 'utf8')) as { service?: { pid: number } };
    return s.service !== undefined && s.service.pid !== runPid && isAlive(s.service.pid);
  }, 10_000);
  const restarted = (JSON.parse(readFileSync(join(tokenFile, '..', 'state.json'), 'utf8')) as { service: { pid: number } }).service.pid;

  const stop = await initd(env, 'stop');
  expect(stop).toMatchObject({ status: 0, output: expect.stringMatching(/ereceipt-auth: stopped/) });
  expect(stop.ms).toBeLessThan(5000);
  expect(isAlive(supervisor)).toBe(false);
  expect(isAlive(restarted)).toBe(false);
  expect(existsSync(pidFile)).toBe(false);
  expect(await initd(env, 'status')).toMatchObject({ status: 3 });
}, 60_000);

// setpriv where util-linux has it; su where it has not (setpriv and chpst hidden from the script).
describe.each([
  ['setpriv', ['root', 'setpriv'], [] as string[]],
  ['su', ['root', 'su'], ['setpriv', 'chpst']],
])('dropping to the service user with %s', (_tool, requirements, hidden) => {
  needs(...requirements)('as the service user (nobody): files it owns, reload reaches run, stop ends it', async () => {
    await asServiceUser(hidden);
  }, 30_000);
});

async function asServiceUser(hidden: string[]): Promise<void> {
  const made = await setup(sim.url, 'nobody');
  const { tokenFile } = made;
  const env = hidden.length ? { ...made.env, PATH: pathWithout(hidden, made.dir) } : made.env;
  expect(statSync(join(env.CONFIG, '..', 'lib', 'credentials')).uid).toBe(65534);
  expect((await initd(env, 'start')).status).toBe(0);
  try {
    await waitFor(() => existsSync(join(tokenFile, '..', 'state.json')), 5000);
    expect(statSync(tokenFile).uid).toBe(65534);
    const state = () => JSON.parse(readFileSync(join(tokenFile, '..', 'state.json'), 'utf8')) as { service?: { pid: number } };
    await waitFor(() => state().service !== undefined, 5000);
    const runPid = (state().service as { pid: number }).pid;
    expect(readFileSync(`/proc/${runPid}/status`, 'utf8')).toMatch(/\nUid:\s+65534\s/);
    const before = sim.tokenRequestCount();
    expect((await initd(env, 'reload')).status).toBe(0);
    await waitFor(() => sim.tokenRequestCount() > before, 5000);
  } finally {
    const stop = await initd(env, 'stop');
    expect(stop.status).toBe(0);
    expect(stop.ms).toBeLessThan(3000);
  }
}

it('a run that ends with a configuration error is not restarted in a loop', async () => {
  const { env, pidFile } = await setup(sim.url);
  writeFileSync(env.CONFIG, JSON.stringify({ ...JSON.parse(readFileSync(env.CONFIG, 'utf8')), colour: 'blue' }));
  const start = await initd(env, 'start');
  expect(start.output).toMatch(/boot did not get a token \(status 78\)/);
  const supervisor = Number(readFileSync(pidFile, 'utf8'));
  await waitFor(() => !isAlive(supervisor), 5000);
  expect(await initd(env, 'status')).toMatchObject({ status: 3 });
}, 30_000);

needs('busybox')('works under BusyBox ash as well', async () => {
  const ash: Shell = ['busybox', 'sh'];
  const { env, tokenFile } = await setup(sim.url);
  expect((await initd(env, 'start', ash)).status).toBe(0);
  expect(existsSync(tokenFile)).toBe(true);
  expect(await initd(env, 'status', ash)).toMatchObject({ status: 0 });
  expect(await initd(env, 'stop', ash)).toMatchObject({ status: 0 });
  expect(await initd(env, 'status', ash)).toMatchObject({ status: 3 });
}, 30_000);

it('start never holds the boot longer than its wait when the identity service is unreachable', async () => {
  const closed = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
  const { env } = await setup(`http://127.0.0.1:${closed}`);
  const start = await initd(env, 'start');
  expect(start.status).toBe(0);
  expect(start.output).toMatch(/boot did not get a token \(status 75\); the service keeps trying/);
  // BOOT_WAIT is 3 s: the whole start, Node's start-ups included, stays near it.
  expect(start.ms).toBeLessThan(3000 + 2000);
  expect(await initd(env, 'status')).toMatchObject({ status: 0 });
  expect((await initd(env, 'stop')).status).toBe(0);
}, 30_000);

needs('systemd-analyze')('the systemd unit passes systemd-analyze verify', async () => {
  // Verified as shipped where /usr/bin/node exists; elsewhere a copy that names this
  // machine's node instead, so every other line of the unit is still checked, and to the letter.
  let unit = UNIT;
  if (!existsSync('/usr/bin/node')) {
    unit = join(tempDir(), 'ereceipt-auth.service');
    writeFileSync(unit, readFileSync(UNIT, 'utf8').split('/usr/bin/node ').join(`${process.execPath} `));
  }
  const result = await new Promise<{ code: string | number; output: string }>((resolve) =>
    execFile('systemd-analyze', ['verify', unit], (error, stdout, stderr) => resolve({ code: error ? (error.code ?? 1) : 0, output: stdout + stderr })),
  );
  expect({ code: result.code, lines: result.output.split('\n').filter(Boolean) }).toEqual({ code: 0, lines: [] });
  expect(readFileSync(UNIT, 'utf8')).toMatch(/ExecStartPre=-\/usr\/bin\/node .* boot --wait 30\n/);
});
