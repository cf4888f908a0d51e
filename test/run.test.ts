// The resident service as init would run it: the built bundle's `run`, against the
// identity-service simulator over loopback HTTP, with real files and real signals.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startIdentitySim, verifySimToken, type IdentitySim, type SimTerminal } from './identity-sim';
import { BUNDLE, runBundle } from './helpers/bundle';
import { needs } from './helpers/needs';
import { seededRandom } from './helpers/random';
import { useTempDir } from './helpers/temp-dir';

const tempDir = useTempDir();
const terminal: SimTerminal = {
  serial: 'POS-RUN-0001',
  modelFramework: '1',
  osVersion: 'Debian 12',
  clientId: 'run-client-0001',
  clientSecret: 'run-secret-0123456789',
  presharedKey: 'run-psk-0123456789',
  scopes: ['InvoicingAPI', 'ReceiptsAPI'],
};
const replacement: SimTerminal = { ...terminal, clientId: 'run-client-0002', clientSecret: 'run-secret-second-0001' };
const lines = (t: SimTerminal) => `client_id=${t.clientId}\nclient_secret=${t.clientSecret}\npresharedkey=${t.presharedKey}\n`;
const secrets = [terminal.clientSecret, terminal.presharedKey, replacement.clientSecret];

interface Service {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

function startRun(config: string): Service {
  const child = spawn(process.execPath, [BUNDLE, '--config', config, 'run'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout?.resume();
  const exited = new Promise<number | null>((resolve) => child.on('close', (status) => resolve(status)));
  return { child, stderr: () => stderr, exited };
}

async function waitFor(what: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!what()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** SIGTERM; a service that has not ended 3 s later is killed, and its status is then null. */
async function stop(service: Service): Promise<{ status: number | null; ms: number }> {
  const started = Date.now();
  service.child.kill('SIGTERM');
  const killer = setTimeout(() => service.child.kill('SIGKILL'), 3000);
  const status = await service.exited;
  clearTimeout(killer);
  return { status, ms: Date.now() - started };
}

function expectCleanLog(text: string): void {
  for (const line of text.trimEnd().split('\n')) expect(line).toMatch(/^<[346]>ereceipt-auth: /);
  for (const secret of secrets) expect(text).not.toContain(secret);
}

let sim: IdentitySim;
beforeAll(async () => {
  sim = await startIdentitySim({ terminals: [terminal] });
});
afterAll(() => sim.close());

async function provisioned(extra: Record<string, unknown> = {}): Promise<{ dir: string; config: string; tokenFile: string }> {
  const dir = tempDir();
  const config = join(dir, 'config.json');
  const tokenFile = join(dir, 'run', 'token.json');
  writeFileSync(
    config,
    JSON.stringify({
      identityUrl: sim.url,
      hal: { driver: 'sim', serial: terminal.serial, modelFramework: '1' },
      osVersion: 'Debian 12',
      credentialsFile: join(dir, 'lib', 'credentials'),
      tokenFile,
      timeoutSeconds: 5,
      ...extra,
    }),
  );
  expect((await runBundle(['--config', config, 'provision', '--stdin', '--offline'], { input: lines(terminal) })).status).toBe(0);
  return { dir, config, tokenFile };
}

it('keeps the token file valid for 30 s of 8-second tokens, whole at every read, and stops on SIGTERM with 0', async () => {
  const { config, tokenFile } = await provisioned();
  sim.setLifetime(8);
  const before = sim.tokenRequestCount();
  const service = startRun(config);
  try {
    await waitFor(() => existsSync(tokenFile), 5000);
    const started = Date.now();
    let reads = 0;
    const problems: string[] = [];
    while (Date.now() - started < 30_000) {
      const readAt = Date.now();
      try {
        const file = JSON.parse(readFileSync(tokenFile, 'utf8')) as { expires_at: string; access_token: string };
        if (Date.parse(file.expires_at) <= readAt) problems.push(`expired token at ${new Date(readAt).toISOString()}: ${file.expires_at}`);
        reads += 1;
      } catch (error) {
        problems.push(`unreadable at ${new Date(readAt).toISOString()}: ${(error as Error).message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const requests = sim.tokenRequestCount() - before;
    console.log(`run, 8 s tokens, 30 s: ${reads} reads of the token file, ${problems.length} problems, ${requests} requests (${(requests / (30 / 8)).toFixed(2)} per lifetime)`);
    expect(problems).toEqual([]);
    expect(reads).toBeGreaterThan(500);
    // One per lifetime, renewed at three quarters of it: 30 s / 6 s, plus the first.
    expect(requests).toBeGreaterThanOrEqual(5);
    expect(requests).toBeLessThanOrEqual(8);
  } finally {
    const { status, ms } = await stop(service);
    sim.setLifetime(3600);
    expect(status).toBe(0);
    expect(ms).toBeLessThan(2000);
  }
  expectCleanLog(service.stderr());
  expect(service.stderr()).toMatch(/<6>ereceipt-auth: SIGTERM: stopping\n$/);
  // The taxpayer has B2C: never a word about it.
  expect(service.stderr()).not.toContain('B2C');
}, 60_000);

it('a taxpayer without B2C is warned about once, not at every renewal, and the token file names it', async () => {
  const { config, tokenFile } = await provisioned();
  const b2bOnly: SimTerminal = { ...terminal, clientId: 'run-client-b2b-only', tags: ['B2B'], rin: '200300400', lifetimeSeconds: 5 };
  sim.addTerminal(b2bOnly);
  expect((await runBundle(['--config', config, 'provision', '--stdin', '--offline'], { input: lines(b2bOnly) })).status).toBe(0);
  const service = startRun(config);
  try {
    const renewals = () => (service.stderr().match(/token renewed/g) ?? []).length;
    await waitFor(() => renewals() >= 3, 15_000);
    const warnings = service.stderr().split('\n').filter((line) => line.includes('B2C'));
    expect(warnings).toEqual(['<4>ereceipt-auth: warning: the token does not carry the B2C tag, so this taxpayer cannot submit receipts: ask for the B2C tag on the taxpayer portal']);
    expect(JSON.parse(readFileSync(tokenFile, 'utf8'))).toMatchObject({ taxpayer_rin: '200300400', taxpayer_tags: ['B2B'] });
  } finally {
    expect((await stop(service)).status).toBe(0);
  }
}, 30_000);

it('transient failures never end it; a provisioning takes effect without a restart; SIGHUP reloads the configuration', async () => {
  const { config, tokenFile } = await provisioned();
  sim.addTerminal(replacement);
  sim.injectFaults({ kind: 'status', status: 503 }, { kind: 'drop' }, { kind: 'status', status: 429, retryAfter: '1' });
  const service = startRun(config);
  try {
    await waitFor(() => existsSync(tokenFile), 15_000);
    expect(service.stderr()).toMatch(/<4>ereceipt-auth: warning: identity service is busy \(HTTP 503\); try 1, next in [1-9]\d* s/);
    expect(service.child.exitCode).toBeNull();

    // A technician re-provisions while the service runs.
    expect((await runBundle(['--config', config, 'provision', '--stdin'], { input: lines(replacement) })).status).toBe(0);
    await waitFor(() => service.stderr().includes('new credentials'), 15_000);
    await waitFor(() => sim.requests.some((r) => r.form['client_id'] === replacement.clientId && r.status === 200 && r.headers['posserial'] === terminal.serial && r.at > 0), 5000);
    const lastClient = () => sim.requests[sim.requests.length - 1]?.form['client_id'];
    await waitFor(() => lastClient() === replacement.clientId, 5000);

    // The configuration changes; SIGHUP makes the service take it.
    writeFileSync(config, JSON.stringify({ ...JSON.parse(readFileSync(config, 'utf8')), scope: 'ReceiptsAPI' }));
    service.child.kill('SIGHUP');
    await waitFor(() => sim.requests[sim.requests.length - 1]?.form['scope'] === 'ReceiptsAPI', 5000);
    await waitFor(() => (JSON.parse(readFileSync(tokenFile, 'utf8')) as { scope: string }).scope === 'ReceiptsAPI', 5000);

    // A broken configuration on SIGHUP keeps the running one.
    writeFileSync(config, '{ broken');
    service.child.kill('SIGHUP');
    await waitFor(() => service.stderr().includes('the reload failed'), 5000);
    expect(service.child.exitCode).toBeNull();
  } finally {
    expect((await stop(service)).status).toBe(0);
  }
  expectCleanLog(service.stderr());
}, 60_000);

it('SIGHUPs in quick succession: at most one login per reload, the last one\'s done, then quiet; SIGTERM still ends it with 0', async () => {
  const { config, tokenFile } = await provisioned();
  const service = startRun(config);
  try {
    await waitFor(() => existsSync(tokenFile), 5000);
    await waitFor(() => service.stderr().includes('token renewed'), 5000);
    const atHup = sim.tokenRequestCount();
    // Signals of one kind do not queue: a few milliseconds apart, so each one lands
    // while the reload before it may still be going on.
    for (let i = 0; i < 3; i++) {
      service.child.kill('SIGHUP');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await waitFor(() => (service.stderr().match(/SIGHUP: terminal/g) ?? []).length >= 2, 5000);
    // Each reload starts one login. One that the next reload overtakes may be cancelled
    // before its request leaves (its manager is closed while it reads the HAL), so: at
    // most one login per reload, and after the last nothing more (no second manager
    // renewing); that the last reload's own login was made, the state file says after
    // the stop. A mismatch shows run's log.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const settled = () => {
      const log = service.stderr();
      const reloads = (log.match(/SIGHUP: terminal/g) ?? []).length;
      const logins = sim.tokenRequestCount() - atHup;
      return { logins, ok: logins >= 1 && logins <= reloads, log };
    };
    const first = settled();
    expect(first.ok ? 'ok' : `${first.logins} logins; run's log:\n${first.log}`).toBe('ok');
    await new Promise((resolve) => setTimeout(resolve, 500));
    const later = settled();
    expect(later.ok && later.logins === first.logins ? 'ok' : `${first.logins} then ${later.logins} logins; run's log:\n${later.log}`).toBe('ok');
  } finally {
    const { status, ms } = await stop(service);
    // An orphaned manager's timers would keep the process alive past SIGTERM.
    expect(status).toBe(0);
    expect(ms).toBeLessThan(2000);
  }
  // What the last manager did, written as run stopped: its one login, and no failure.
  const state = JSON.parse(readFileSync(join(tokenFile, '..', 'state.json'), 'utf8')) as { service?: { requests: number }; last_error?: unknown };
  expect({ requests: state.service?.requests, lastError: state.last_error, log: state.service?.requests === 1 ? '' : service.stderr() }).toEqual({ requests: 1, lastError: undefined, log: '' });
});

it('50 randomized races of new credentials, SIGHUP and SIGTERM: no hang, every exit 0 within 2 s', async () => {
  // Five terminals side by side, each with its own files: one run per token file (the lock).
  const configs = await Promise.all(Array.from({ length: 5 }, async () => (await provisioned()).config));
  const random = seededRandom(50);
  const outcomes: { status: number | null; ms: number }[] = [];
  const one = async (slot: number) => {
    const config = configs[slot] as string;
    const credentials = JSON.parse(readFileSync(config, 'utf8')).credentialsFile as string;
    const service = startRun(config);
    await waitFor(() => service.stderr().includes('token renewed'), 10_000);
    // A technician's provisioning lands (a new file renamed over the old one), then the signals.
    const copy = `${credentials}.new`;
    copyFileSync(credentials, copy);
    renameSync(copy, credentials);
    await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 30)));
    service.child.kill('SIGHUP');
    await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 30)));
    outcomes.push(await stop(service));
  };
  for (let round = 0; round < 10; round++) await Promise.all(Array.from({ length: 5 }, (_, slot) => one(slot)));
  expect(outcomes).toHaveLength(50);
  const ms = outcomes.map((o) => o.ms).sort((a, b) => a - b);
  console.log(`50 races of new credentials, SIGHUP and SIGTERM: ${outcomes.filter((o) => o.status === 0).length} exits 0, stop median ${ms[25]} ms, slowest ${ms[49]} ms`);
  expect(outcomes.filter((o) => o.status !== 0 || o.ms >= 2000)).toEqual([]);
}, 120_000);

it('a rejection is logged once, the service keeps running, and status shows the slow retry planned', async () => {
  const { config } = await provisioned();
  sim.updateTerminal(terminal.clientId, { blocked: true });
  const service = startRun(config);
  try {
    await waitFor(() => service.stderr().includes('<3>'), 5000);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const errors = service.stderr().split('\n').filter((l) => l.startsWith('<3>'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^<3>ereceipt-auth: error: client_id \.\.\.0001 is not allowed to sign in \(unauthorized_client.*\): .*check it on the taxpayer portal; will ask again about every 15 minutes$/);
    const status = await runBundle(['--config', config, 'status', '--json']);
    const report = JSON.parse(status.stdout) as { service: { running: boolean; rejected: boolean; nextAttemptAt: string }; lastError: { code: string } };
    expect(report.service).toMatchObject({ running: true, rejected: true });
    expect(Date.parse(report.service.nextAttemptAt) - Date.now()).toBeGreaterThan(13 * 60_000);
    expect(report.lastError.code).toBe('ERR_CREDENTIALS_REJECTED');
  } finally {
    sim.updateTerminal(terminal.clientId, { blocked: false });
    expect((await stop(service)).status).toBe(0);
  }
  const stoppedBy = Date.now();
  const after = JSON.parse((await runBundle(['--config', config, 'status', '--json'])).stdout) as { service: { running: boolean; stoppedAt: string } };
  expect(after.service.running).toBe(false);
  // Written as it stopped: within the last few seconds, not some other time.
  expect(Date.parse(after.service.stoppedAt)).toBeLessThanOrEqual(stoppedBy);
  expect(Date.parse(after.service.stoppedAt)).toBeGreaterThan(stoppedBy - 5000);
}, 30_000);

it('1 ms tokens are a failing service, not a renewal loop: a few logins with backoff, no token file, boot exits 75', async () => {
  const { config, tokenFile } = await provisioned();
  const shortLived: SimTerminal = { ...terminal, clientId: 'run-client-1ms', lifetimeSeconds: 0.001 };
  sim.addTerminal(shortLived);
  expect((await runBundle(['--config', config, 'provision', '--stdin', '--offline'], { input: lines(shortLived) })).status).toBe(0);
  const before = sim.requests.length;
  const service = startRun(config);
  try {
    await new Promise((resolve) => setTimeout(resolve, 6000));
    const logins = sim.requests.length - before;
    // Backoff with full jitter, ceilings 1, 2, 4 … 60 s: a tenth login within 6 s needs
    // the 5th to 9th waits (ceilings 16 to 60 s) all under 6 s, odds under 1 in 10,000.
    // The loop this replaces made about 130 logins a second.
    expect(logins).toBeGreaterThanOrEqual(2);
    expect(logins).toBeLessThanOrEqual(9);
    expect(existsSync(tokenFile)).toBe(false);
    expect(service.stderr()).toContain('identity service answered without a usable token (it lasts 0.001 s, under the 5 s a terminal can use); try 1, next in');
    expect(service.stderr()).not.toContain('token renewed');
  } finally {
    expect((await stop(service)).status).toBe(0);
  }
  const boot = await runBundle(['--config', config, 'boot', '--wait', '0']);
  expect(boot.status).toBe(75);
  expect(boot.stderr).toBe('ereceipt-auth: error: identity service answered without a usable token (it lasts 0.001 s, under the 5 s a terminal can use): try again later\n');
  expect(existsSync(tokenFile)).toBe(false);
}, 30_000);

describe('one service per token file', () => {
  it('a second run exits 75 at once naming the first; status names the running one; the lock goes on stop', async () => {
    const { config, tokenFile } = await provisioned();
    const lock = join(tokenFile, '..', 'run.pid');
    const first = startRun(config);
    try {
      await waitFor(() => existsSync(tokenFile), 15_000);
      const before = sim.requests.length;
      const started = Date.now();
      const second = await runBundle(['--config', config, 'run']);
      expect(second.status).toBe(75);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(second.stderr).toBe(
        `ereceipt-auth: error: ereceipt-auth run is already running as pid ${first.child.pid} (lock ${lock}): stop it first; "ereceipt-auth status" shows it\n`,
      );
      expect(sim.requests.length).toBe(before);
      const status = JSON.parse((await runBundle(['--config', config, 'status', '--json'])).stdout) as { service: { running: boolean; pid: number } };
      expect(status.service).toMatchObject({ running: true, pid: first.child.pid });
    } finally {
      expect((await stop(first)).status).toBe(0);
    }
    expect(() => readlinkSync(lock)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    const after = JSON.parse((await runBundle(['--config', config, 'status', '--json'])).stdout) as { service: { running: boolean; pid: number } };
    expect(after.service).toMatchObject({ running: false, pid: first.child.pid });
  }, 30_000);

  it.each([
    ['a dead pid (kill -9, a power cut)', (lock: string) => symlinkSync('2147483646 12345', lock)],
    ['a live pid that started at another time (a reused pid)', (lock: string) => symlinkSync(`${process.pid} 1`, lock)],
    ['a regular file planted in its place', (lock: string) => writeFileSync(lock, `${process.pid} 1`)],
  ])('a stale lock from %s is taken over', async (_name, plant) => {
    const { config, tokenFile } = await provisioned();
    const lock = join(tokenFile, '..', 'run.pid');
    mkdirSync(join(tokenFile, '..'), { recursive: true, mode: 0o700 });
    plant(lock);
    const service = startRun(config);
    try {
      await waitFor(() => existsSync(tokenFile), 15_000);
      expect(readlinkSync(lock)).toMatch(new RegExp(`^${service.child.pid} \\d+$`));
    } finally {
      expect((await stop(service)).status).toBe(0);
    }
  }, 30_000);
});

needs('tmpfs mount')('a full token folder (ENOSPC on its tmpfs): the token is held, the write retried, and the file is back soon after space is freed', async () => {
  const { config, tokenFile } = await provisioned();
  const folder = join(tokenFile, '..');
  mkdirSync(folder, { mode: 0o700 });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', folder]);
  try {
    // Fill it to the last block.
    const filler = join(folder, 'filler');
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k'], { stdio: 'ignore' });
    } catch {
      // dd stops at ENOSPC, as wanted
    }
    const service = startRun(config);
    try {
      // The write's failure and the renewal are two log lines; wait for the second.
      await waitFor(() => service.stderr().includes('but not yet in the token file'), 15_000);
      expect(service.stderr()).toMatch(/<3>ereceipt-auth: error: cannot write the token file .*token\.json \(ENOSPC\): .*; the token is held, try 1, next in 1 s\n/);
      expect(service.stderr()).toContain('token renewed (valid until');
      expect(service.stderr()).toContain('but not yet in the token file: its write is being retried');
      expect(existsSync(tokenFile)).toBe(false);
      await waitFor(() => /try 4, next in 8 s/.test(service.stderr()), 15_000);
      const logins = sim.requests.length;
      rmSync(filler);
      const freed = Date.now();
      // The next try is at most 8 s away (then every 15 s), with no new login.
      await waitFor(() => existsSync(tokenFile), 9000);
      console.log(`ENOSPC: the token file was back ${Date.now() - freed} ms after space was freed (retry delay then 8 s)`);
      expect(Date.now() - freed).toBeLessThan(9000);
      expect(sim.requests.length).toBe(logins);
      // The line is written right after the file; through the pipe it may come a moment later.
      await waitFor(() => /the token file .*token\.json is written again, after \d+ failed tries/.test(service.stderr()), 2000);
      expect(verifySimToken((JSON.parse(readFileSync(tokenFile, 'utf8')) as { access_token: string }).access_token, sim.publicKey)).toMatchObject({ client_id: terminal.clientId });
    } finally {
      expect((await stop(service)).status).toBe(0);
    }
  } finally {
    execFileSync('umount', [folder]);
  }
}, 60_000);

it('SIGTERM during a slow HAL read ends run with 0 within 2 s, without waiting for the read', async () => {
  const { config } = await provisioned();
  // Provisioned with a quick terminal; from now on each read takes 9 s.
  writeFileSync(config, JSON.stringify({ ...JSON.parse(readFileSync(config, 'utf8')), hal: { driver: 'sim', serial: terminal.serial, modelFramework: '1', delayMs: 9000 } }));
  const service = startRun(config);
  await waitFor(() => service.stderr().includes('started: terminal'), 10_000);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const { status, ms } = await stop(service);
  expect(status).toBe(0);
  expect(ms).toBeLessThan(2000);
  expect(service.stderr()).not.toContain('error');
}, 30_000);
