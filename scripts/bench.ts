// `npm run bench`: start-up time and memory of the built bundle, measured side by
// side with bare Node in one run, as ratios of medians. Runs alternate (A B A B …)
// so that a noisy neighbour slows both sides alike. Each run goes through
// /usr/bin/time for its peak RSS.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { createProxy } from 'proxy';
import { join } from 'node:path';
import { tlvInfoImage } from './tlv-image';
import { startCoprocessor } from '../test/helpers/coprocessor';
import { startIdentitySim } from '../test/identity-sim';

const BUNDLE = join(__dirname, '..', 'dist', 'ereceipt-auth.js');
const RUNS = Number(process.env['BENCH_RUNS'] ?? 21);

/**
 * What a terminal's Node starts with: none of the variables that make every Node
 * start do more. NODE_EXTRA_CA_CERTS, set machine-wide on some hosts (this one
 * included), makes each start parse the whole CA bundle, about 35 ms; measured with
 * it, every ratio below would shrink towards 1. BENCH_KEEP_ENV=1 keeps them.
 */
const STARTUP_VARIABLES = ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS', 'NODE_COMPILE_CACHE', 'NODE_V8_COVERAGE'];
const dropped = process.env['BENCH_KEEP_ENV'] === '1' ? [] : STARTUP_VARIABLES.filter((name) => process.env[name] !== undefined);
for (const name of dropped) delete process.env[name];

interface Sample {
  ms: number;
  rssKiB: number;
}

function measure(args: string[], input = '', env: NodeJS.ProcessEnv = process.env): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '%M', process.execPath, ...args], { stdio: ['pipe', 'ignore', 'pipe'], env });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const rss = Number(stderr.trim().split('\n').pop());
      if (status !== 0 || !Number.isFinite(rss)) reject(new Error(`${args.join(' ')} failed (${status}): ${stderr.trim()}`));
      else resolve({ ms, rssKiB: rss });
    });
    child.stdin.end(input);
  });
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
};

async function compare(name: string, subject: () => Promise<Sample>, baselineName: string, baseline: () => Promise<Sample>): Promise<string> {
  const a: Sample[] = [];
  const b: Sample[] = [];
  await subject();
  await baseline();
  for (let i = 0; i < RUNS; i++) {
    a.push(await subject());
    b.push(await baseline());
  }
  const [am, bm] = [median(a.map((s) => s.ms)), median(b.map((s) => s.ms))];
  const [ar, br] = [median(a.map((s) => s.rssKiB)), median(b.map((s) => s.rssKiB))];
  return `| ${name} | ${baselineName} | ${(am / bm).toFixed(2)}x | ${(ar / br).toFixed(2)}x | ${am.toFixed(0)} / ${bm.toFixed(0)} ms | ${(ar / 1024).toFixed(1)} / ${(br / 1024).toFixed(1)} MiB |`;
}

/** `run` after its first login, against an idle Node process with one timer: medians of 10 samples a second apart. */
async function residentRow(name: string, args: string[]): Promise<string> {
  const service = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const idle = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: no token within 30 s`)), 30_000);
    service.stderr?.setEncoding('utf8').on('data', (d: string) => {
      if (d.includes('token renewed')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const rss = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let i = 0; i < 10; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    ours.push(rss(service.pid as number));
    theirs.push(rss(idle.pid as number));
  }
  service.kill('SIGTERM');
  idle.kill('SIGTERM');
  const [o, t] = [median(ours), median(theirs)];
  return `| ${name} | idle \`node -e 'setInterval(() => {}, 1000)'\` | - | ${(o / t).toFixed(2)}x (+${((o - t) / 1024).toFixed(1)} MiB) | - | ${(o / 1024).toFixed(1)} / ${(t / 1024).toFixed(1)} MiB |`;
}

/** How long the jest suite takes, once, after everything else (it would disturb the timings). */
function testSuiteSeconds(): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const jest = spawn(process.execPath, [join(__dirname, '..', 'node_modules', 'jest', 'bin', 'jest.js'), '--silent'], { cwd: join(__dirname, '..'), stdio: 'ignore' });
    jest.on('error', reject);
    jest.on('close', (status) => (status === 0 ? resolve((Date.now() - started) / 1000) : reject(new Error(`the test suite failed (${status})`))));
  });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ereceipt-auth-bench-'));
  const terminal = {
    serial: 'POS-BENCH-0001',
    modelFramework: '1',
    osVersion: 'Debian 12',
    clientId: 'bench-client-0001',
    clientSecret: 'bench-secret-0123456789',
    presharedKey: 'bench-psk-0123456789abcdef',
  };
  const sim = await startIdentitySim({ terminals: [terminal] });
  const runDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'ereceipt-auth-bench-run-'));
  try {
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        identityUrl: sim.url,
        hal: { driver: 'sim', serial: terminal.serial, modelFramework: terminal.modelFramework },
        osVersion: terminal.osVersion,
        credentialsFile: join(dir, 'credentials'),
        // On tmpfs, as /run is on a terminal: the credentials file is the one on flash.
        tokenFile: join(runDir, 'token.json'),
      }),
    );
    const input = `client_id=${terminal.clientId}\nclient_secret=${terminal.clientSecret}\npresharedkey=${terminal.presharedKey}\n`;
    await measure([BUNDLE, '--config', config, 'provision', '--stdin', '--offline'], input);
    await measure([BUNDLE, '--config', config, 'boot']);

    // The same POST as boot sends, by the shortest Node script that can send it.
    const url = new URL(`${sim.url}/connect/token`);
    const bare = `const h=require('http');const b=${JSON.stringify(
      new URLSearchParams({ grant_type: 'client_credentials', client_id: terminal.clientId, client_secret: terminal.clientSecret }).toString(),
    )};const r=h.request({host:${JSON.stringify(url.hostname)},port:${url.port},path:'/connect/token',method:'POST',headers:{'content-type':'application/x-www-form-urlencoded','content-length':b.length,posserial:${JSON.stringify(
      terminal.serial,
    )},pososversion:${JSON.stringify(terminal.osVersion)},posmodelframework:'1',presharedkey:${JSON.stringify(
      terminal.presharedKey,
    )}}},s=>{let d='';s.on('data',c=>d+=c);s.on('end',()=>{if(s.statusCode!==200)process.exit(1)})});r.end(b);`;

    // The same terminal behind the two hardware drivers: an EEPROM image file, and a
    // co-processor on a pseudo-terminal (test/helpers/coprocessor.py).
    const eeprom = join(dir, 'eeprom');
    writeFileSync(eeprom, tlvInfoImage(terminal.serial, 1));
    const coprocessor = await startCoprocessor(['--serial', terminal.serial, '--model', '1']);
    const ptyPath = coprocessor.path;
    const variant = (name: string, hal: Record<string, unknown>) => {
      const file = join(dir, `${name}.json`);
      writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(config, 'utf8')), hal }));
      return file;
    };
    const eepromConfig = variant('eeprom', { driver: 'eeprom', path: eeprom });
    const serialConfig = variant('serial', { driver: 'serial', path: ptyPath });
    const boot = (file: string) => () => measure([BUNDLE, '--config', file, 'boot']);
    // Benchmark-only clients (devDependencies), given the same request in BENCH_REQUEST.
    process.env['BENCH_REQUEST'] = JSON.stringify({
      url: sim.url,
      clientId: terminal.clientId,
      clientSecret: terminal.clientSecret,
      headers: { posserial: terminal.serial, pososversion: terminal.osVersion, posmodelframework: terminal.modelFramework, presharedkey: terminal.presharedKey },
    });
    const client = (file: string) => () => measure([join(__dirname, '..', 'scripts', 'bench-clients', file)]);
    // A CONNECT proxy on loopback (the same package the tests use), for boot through a proxy.
    const proxy = createProxy(createServer());
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxyEnv = { ...process.env, HTTP_PROXY: `http://127.0.0.1:${(proxy.address() as { port: number }).port}` };

    const rows = [
      await compare('`token`, fresh token file', () => measure([BUNDLE, '--config', config, 'token']), '`node -e 0`', () => measure(['-e', '0'])),
      await compare('`boot` against the simulator', () => measure([BUNDLE, '--config', config, 'boot']), 'bare `http.request` POST', () => measure(['-e', bare])),
      await compare('the same POST by bundled node-fetch alone', () => measure([join(__dirname, 'bench-node-fetch.js')]), 'bare `http.request` POST', () => measure(['-e', bare])),
      await compare('the same request by openid-client 6', client('openid-client.mjs'), '`boot`', boot(config)),
      await compare('the same request by simple-oauth2 5', client('simple-oauth2.cjs'), '`boot`', boot(config)),
      await compare('`boot`, EEPROM HAL', boot(eepromConfig), '`boot`, sim HAL', boot(config)),
      await compare('`boot`, serial HAL over a pty', boot(serialConfig), '`boot`, sim HAL', boot(config)),
      await compare('`boot` through an HTTP proxy (CONNECT)', () => measure([BUNDLE, '--config', config, 'boot'], '', proxyEnv), '`boot` direct', boot(config)),
    ];
    proxy.close();
    coprocessor.stop();
    rows.push(await residentRow('`run`, resident after its first login', [BUNDLE, '--config', config, 'run']));
    process.env['BENCH_IDLE'] = '1';
    rows.push(await residentRow('node-fetch alone, idle after the same POST', [join(__dirname, 'bench-node-fetch.js')]));
    const kib = statSync(BUNDLE).size / 1024;
    console.log(`${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores, Node ${process.version}, ${RUNS} alternating runs each, medians`);
    console.log(`${dropped.length ? `left out of every measured start, as a terminal has none of them: ${dropped.join(', ')}` : 'no start-up variable set'}\n`);
    console.log('| measure | against | wall | peak RSS | wall (measure / against) | RSS (measure / against) |');
    console.log('|---|---|---|---|---|---|');
    for (const row of rows) console.log(row);
    const beside = (name: string) => `${name} ${(statSync(join(__dirname, '..', 'dist', name)).size / 1024).toFixed(1)} KiB`;
    console.log(`\nbundle: dist/ereceipt-auth.js ${kib.toFixed(1)} KiB (beside it: ${beside('serial-driver.js')}, ${beside('proxy-agent.js')})`);
    if (process.env['BENCH_TESTS'] !== '0') {
      console.log(`npm test's jest suite: ${(await testSuiteSeconds()).toFixed(0)} s (one run, after the rest; BENCH_TESTS=0 leaves it out)`);
    }
  } finally {
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(runDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(`bench failed: ${(error as Error).message}`);
  process.exitCode = 1;
});
