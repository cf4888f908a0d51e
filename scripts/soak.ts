// `npm run soak`: memory of the resident service.
// 1. The built bundle's `run`, renewing 5-second tokens, the shortest it accepts (a
//    renewal every 3.75 s, so a minute holds as many renewals as 16 hours of real
//    ones), its resident RSS side by side with an idle `node -e 'setInterval(() => {}, 1000)'`.
// 2. 10,000 renewal cycles of the same pieces `run` is made of (token manager, login
//    over real loopback HTTP, token file and state file written each time), on a
//    clock that skips the waiting, with the heap and RSS every 1,000 cycles.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimHal } from '../hal/sim';
import type { Clocks } from '../src/clock';
import { parseConfig } from '../src/config';
import { writeCredentials } from '../src/credentials';
import { createLogger } from '../src/log';
import { loginOnce } from '../src/login';
import { Secret } from '../src/secret';
import { recordState, tokenFileFromHeld, writeTokenFile } from '../src/token-file';
import { createTokenManager } from '../src/token-manager';
import { createTransport } from '../src/transport';

const BUNDLE = join(__dirname, '..', 'dist', 'ereceipt-auth.js');
const RUN_SECONDS = Number(process.env['SOAK_RUN_SECONDS'] ?? 60);
const CYCLES = Number(process.env['SOAK_CYCLES'] ?? 10_000);
/** The shortest lifetime the terminal takes (MIN_LIFETIME_SECONDS): shorter ones are refused as unusable. */
const LIFETIME = 5;

const terminal = {
  serial: 'POS-SOAK-0001',
  modelFramework: '1',
  osVersion: 'Debian 12',
  clientId: 'soak-client-0001',
  clientSecret: 'soak-secret-0123456789',
  presharedKey: 'soak-psk-0123456789',
};

function rssKiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? NaN);
}

const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

async function residentRun(dir: string, simUrl: string): Promise<void> {
  const config = join(dir, 'run.json');
  writeFileSync(
    config,
    JSON.stringify({
      identityUrl: simUrl,
      hal: { driver: 'sim', serial: terminal.serial, modelFramework: '1' },
      osVersion: 'Debian 12',
      credentialsFile: join(dir, 'run-lib', 'credentials'),
      tokenFile: join(dir, 'run-tokens', 'token.json'),
    }),
  );
  await new Promise<void>((resolve, reject) => {
    const p = spawn(process.execPath, [BUNDLE, '--config', config, 'provision', '--stdin', '--offline'], { stdio: ['pipe', 'ignore', 'inherit'] });
    p.on('close', (status) => (status === 0 ? resolve() : reject(new Error(`provision failed: ${status}`))));
    p.stdin.end(`client_id=${terminal.clientId}\nclient_secret=${terminal.clientSecret}\npresharedkey=${terminal.presharedKey}\n`);
  });
  const service = spawn(process.execPath, [BUNDLE, '--config', config, 'run'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let renewals = 0;
  service.stderr?.setEncoding('utf8').on('data', (d: string) => (renewals += (d.match(/token renewed/g) ?? []).length));
  const idle = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const ours: number[] = [];
  const theirs: number[] = [];
  const firstHalf: number[] = [];
  await new Promise((resolve) => setTimeout(resolve, 3000));
  for (let s = 0; s < RUN_SECONDS; s++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    ours.push(rssKiB(service.pid as number));
    theirs.push(rssKiB(idle.pid as number));
    if (s < RUN_SECONDS / 2) firstHalf.push(ours[ours.length - 1] as number);
  }
  const last = ours.slice(-Math.ceil(RUN_SECONDS / 2));
  service.kill('SIGTERM');
  idle.kill('SIGTERM');
  const [o, t] = [median(ours), median(theirs)];
  console.log(`run, ${RUN_SECONDS} s of ${LIFETIME}-second tokens (${renewals} renewals): resident RSS median ${mib(o)} vs idle node ${mib(t)}: ${(o / t).toFixed(2)}x, +${mib(o - t)}`);
  console.log(`  median RSS first half ${mib(median(firstHalf))}, second half ${mib(median(last))}`);
}

/** A clock on which every wait is over at once: renewals follow each other as fast as the I/O allows. */
function skippingClock(): Clocks {
  let skipped = 0;
  return {
    now: () => Date.now() + skipped,
    monotonic: () => Number(process.hrtime.bigint()) / 1e6 + skipped,
    random: Math.random,
    sleep: async (ms) => {
      skipped += ms;
    },
    setTimer: (fn, ms) => {
      const timer = setImmediate(() => {
        skipped += ms;
        fn();
      });
      return () => clearImmediate(timer);
    },
  };
}

async function cycles(dir: string, simUrl: string): Promise<void> {
  const config = parseConfig(
    { identityUrl: simUrl, hal: { driver: 'sim', serial: terminal.serial, modelFramework: '1' }, osVersion: 'Debian 12', credentialsFile: join(dir, 'lib', 'c'), tokenFile: join(dir, 'tokens', 'token.json') },
    join(dir, 'soak.json'),
  );
  await writeCredentials(config.credentialsFile, { clientId: terminal.clientId, clientSecret: new Secret(terminal.clientSecret), presharedKey: new Secret(terminal.presharedKey) }, { serial: terminal.serial });
  const clocks = skippingClock();
  const hal = createSimHal({ serial: terminal.serial, modelFramework: '1' });
  let done = 0;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const rows: string[] = [];
  const gc = (globalThis as { gc?: () => void }).gc;
  const manager = createTokenManager({
    login: loginOnce(config, hal, createTransport(config), clocks),
    clocks,
    log: createLogger({ write: (line) => process.env['SOAK_DEBUG'] && process.stderr.write(line), quiet: true }),
    keepAlive: true,
    onToken: async (held) => {
      await writeTokenFile(config.tokenFile, tokenFileFromHeld(held, clocks.now(), clocks.monotonic()));
      await recordState(config.tokenFile, { last_success_at: new Date(clocks.now()).toISOString() });
      done += 1;
      if (done % 1000 === 0 || done === 100) {
        gc?.();
        const m = process.memoryUsage();
        rows.push(
          `  after ${String(done).padStart(5)} renewals: heap used ${(m.heapUsed / 1048576).toFixed(1)} MiB, external ${(m.external / 1048576).toFixed(1)} MiB, RSS ${(m.rss / 1048576).toFixed(1)} MiB`,
        );
      }
      if (done >= CYCLES) finish();
    },
  });
  const started = Date.now();
  manager.start();
  await finished;
  await manager.close();
  console.log(`${CYCLES} renewal cycles in ${((Date.now() - started) / 1000).toFixed(1)} s${gc ? ' (heap measured after a full GC)' : ''}:`);
  for (const row of rows) console.log(row);
}

/** The simulator in a process of its own, so that its request log does not count in our memory. */
async function simProcess(dir: string): Promise<{ url: string; stop: () => void }> {
  const terminals = join(dir, 'terminals.json');
  writeFileSync(terminals, JSON.stringify([terminal]));
  const child = spawn(process.execPath, [join(__dirname, '..', 'dist', 'identity-sim.js'), '--terminals', terminals, '--lifetime', String(LIFETIME)], { stdio: ['ignore', 'pipe', 'ignore'] });
  const url = await new Promise<string>((resolve) => child.stdout?.setEncoding('utf8').once('data', (line: string) => resolve(/http:\/\/\S+/.exec(line)?.[0] ?? '')));
  return { url, stop: () => child.kill('SIGTERM') };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ereceipt-auth-soak-'));
  const sim = await simProcess(dir);
  try {
    await residentRun(dir, sim.url);
    await cycles(dir, sim.url);
  } finally {
    sim.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(`soak failed: ${(error as Error).message}`);
  process.exitCode = 1;
});
