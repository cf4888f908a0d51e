// `npm run api-soak`: the in-process API as a busy POS application uses it. For
// SOAK_API_SECONDS (default 600) it submits 10 receipts a second through
// `authorizedFetch` (dist/index.js, as an application loads it) to the simulator's
// receipts endpoint, in a process of its own, which issues 5-second tokens, throttles
// 5 % of submissions (429, Retry-After 1) and revokes the token of 1 %. The
// application retries a 429 after its Retry-After, as the README asks it to, and dates
// each receipt by the service's clock (state().clockOffset). Reported: the final
// statuses (401s target 0), logins (scheduled renewals, and those forced by a 401
// against the revocations), and the RSS and heap at the start and the end
// (SOAK_API_SNAPSHOTS=DIR also writes heap snapshots to compare).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import type * as Api from '../src/index';

const DIST = join(__dirname, '..', 'dist');
const SECONDS = Number(process.env['SOAK_API_SECONDS'] ?? 600);
/** A folder: a heap snapshot is written there after the first minute and at the end, to compare (Chrome DevTools, Memory). */
const SNAPSHOTS = process.env['SOAK_API_SNAPSHOTS'];
const PER_SECOND = 10;
const LIFETIME = 5;
const terminal = { serial: 'POS-APISOAK-01', modelFramework: '1', osVersion: 'Debian 12', clientId: 'apisoak-client-01', clientSecret: 'apisoak-secret-0123456789', presharedKey: 'apisoak-psk-0123456789' };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

function measure(): { rss: number; heap: number; heapTotal: number; external: number; spaces: string } {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  // Where the heap is: data (old space) against V8's own code and maps, which grow as it optimizes.
  const used = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size]));
  const kib = (name: string) => `${Math.round((used[name] ?? 0) / 1024)}`;
  // Node 20's V8 keeps maps in the old space: no map space then.
  const spaces = `old ${kib('old_space')} KiB, code ${kib('code_space')} KiB${used['map_space'] === undefined ? '' : `, maps ${kib('map_space')} KiB`}`;
  return { rss: m.rss, heap: m.heapUsed, heapTotal: m.heapTotal, external: m.external, spaces };
}

async function startSim(dir: string): Promise<{ url: string; stop: () => void }> {
  const terminals = join(dir, 'terminals.json');
  writeFileSync(terminals, JSON.stringify([terminal]));
  const child = spawn(process.execPath, [join(DIST, 'identity-sim.js'), '--terminals', terminals, '--lifetime', String(LIFETIME), '--control'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.setEncoding('utf8').once('data', (line: string) => resolve(/http:\/\/\S+/.exec(line)?.[0] ?? ''));
    child.once('exit', () => reject(new Error('the simulator exited before listening')));
  });
  return { url, stop: () => child.kill('SIGTERM') };
}

async function provision(config: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const p = spawn(process.execPath, [join(DIST, 'ereceipt-auth.js'), '--config', config, 'provision', '--stdin', '--offline'], { stdio: ['pipe', 'ignore', 'inherit'] });
    p.on('close', (status) => (status === 0 ? resolve() : reject(new Error(`provision failed: ${status}`))));
    p.stdin.end(`client_id=${terminal.clientId}\nclient_secret=${terminal.clientSecret}\npresharedkey=${terminal.presharedKey}\n`);
  });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ereceipt-auth-api-soak-'));
  const sim = await startSim(dir);
  try {
    const control = async (body?: unknown) => {
      const { default: fetch } = await import('node-fetch');
      const res = await fetch(`${sim.url}/_sim/control`, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return (await res.json()) as { tokenRequests: number; receipts: { submissions: number; byStatus: Record<string, number>; revokedTokens: number } };
    };
    await control({ receipts: { throttleRate: 0.05, revokeRate: 0.01, retryAfter: '1' } });
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        identityUrl: sim.url,
        hal: { driver: 'sim', serial: terminal.serial, modelFramework: '1' },
        osVersion: 'Debian 12',
        credentialsFile: join(dir, 'lib', 'credentials'),
        tokenFile: join(dir, 'run', 'token.json'),
      }),
    );
    await provision(config);

    // As an application loads it: the built API, not the source.
    const api = require(join(DIST, 'index.js')) as typeof Api;
    const manager = api.createTokenManager(config);
    await manager.getToken();

    const finals: Record<string, number> = {};
    let throttled = 0;
    let thrown = 0;
    let rejectedDocs = 0;
    let inFlight = 0;
    let sent = 0;
    // Scheduled renewals against logins forced by a 401: a token obtained before its renewal was due was forced.
    let scheduled = 0;
    let forced = 0;
    let lastObtained = manager.state().token?.obtainedAt;
    let lastNext = manager.state().nextAttemptAt;
    const watch = () => {
      const s = manager.state();
      const obtained = s.token?.obtainedAt;
      if (obtained !== undefined && obtained !== lastObtained) {
        if (lastNext !== undefined && obtained < lastNext - 20) forced += 1;
        else scheduled += 1;
        lastObtained = obtained;
      }
      lastNext = s.nextAttemptAt;
    };

    const submitOne = async (n: number) => {
      inFlight += 1;
      try {
        for (let attempt = 0; ; attempt++) {
          const s = manager.state();
          // Dated by the service's clock, on the safe side of its precision: never in its future.
          const offset = s.clockOffset ? (s.clockOffset.seconds - s.clockOffset.precisionSeconds) * 1000 : 0;
          const body = JSON.stringify({
            receipts: [{ header: { uuid: `soak-${n}`, receiptNumber: `R-${n}`, dateTimeIssued: new Date(Date.now() + offset).toISOString() }, seller: { rin: s.token?.taxpayerRin } }],
          });
          const res = await manager.authorizedFetch(`${sim.url}/api/v1/receiptsubmissions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
          const answer = (await res.json().catch(() => ({}))) as { rejectedDocuments?: unknown[] };
          if (res.status === 429 && attempt < 5) {
            throttled += 1;
            await sleep(Number(res.headers.get('retry-after') ?? '1') * 1000);
            continue;
          }
          rejectedDocs += answer.rejectedDocuments?.length ?? 0;
          finals[res.status] = (finals[res.status] ?? 0) + 1;
          return;
        }
      } catch {
        thrown += 1;
      } finally {
        inFlight -= 1;
      }
    };

    await sleep(2000);
    const start = measure();
    const startedAt = Date.now();
    const rows: string[] = [];
    const timer = setInterval(() => {
      watch();
      void submitOne(sent++);
    }, 1000 / PER_SECOND);
    for (let minute = 1; minute * 60 <= SECONDS; minute++) {
      await sleep(startedAt + minute * 60_000 - Date.now());
      const m = measure();
      if (SNAPSHOTS && minute === 1) console.log(`  heap snapshot: ${writeHeapSnapshot(join(SNAPSHOTS, 'api-soak-1min.heapsnapshot'))}`);
      rows.push(`  ${String(minute).padStart(2)} min: RSS ${mib(m.rss)}, heap used ${mib(m.heap)} of ${mib(m.heapTotal)} (${m.spaces}), external ${mib(m.external)}, ${sent} sent, final 401s ${finals['401'] ?? 0}`);
    }
    await sleep(startedAt + SECONDS * 1000 - Date.now());
    clearInterval(timer);
    while (inFlight > 0) await sleep(50);
    watch();
    const end = measure();
    if (SNAPSHOTS) console.log(`  heap snapshot: ${writeHeapSnapshot(join(SNAPSHOTS, 'api-soak-end.heapsnapshot'))}`);
    const sim_ = await control();
    await manager.close();

    const total = Object.values(finals).reduce((a, b) => a + b, 0);
    console.log(`API soak: ${SECONDS} s, ${PER_SECOND} submissions/s, ${LIFETIME}-s tokens, 5 % 429s and 1 % revocations drawn by the receipts endpoint (Node ${process.version})`);
    console.log(`  submissions: ${sent} sent, ${total} answered finally: ${Object.entries(finals).map(([k, v]) => `${k}: ${v}`).join(', ')}; ${thrown} rejected by the API; ${rejectedDocs} receipts rejected`);
    console.log(`  final 401s: ${finals['401'] ?? 0} (target 0); 429s retried after Retry-After: ${throttled}`);
    console.log(`  at the receipts endpoint: ${sim_.receipts.submissions} requests, ${Object.entries(sim_.receipts.byStatus).map(([k, v]) => `${k}: ${v}`).join(', ')}; tokens revoked: ${sim_.receipts.revokedTokens}`);
    const revoked = sim_.receipts.revokedTokens;
    // A revocation that meets a renewal already under way is served by it: no forced login of its own.
    const shared = revoked > forced ? `; ${revoked - forced} met a scheduled renewal under way` : '';
    console.log(`  logins: ${sim_.tokenRequests} at the identity service (1 at start, ${scheduled} scheduled renewals, ${forced} forced by a 401 for ${revoked} revoked tokens: ${Math.max(0, forced - revoked)} extra${shared})`);
    console.log(`  memory after a full GC: start RSS ${mib(start.rss)}, heap ${mib(start.heap)} (${start.spaces}); end RSS ${mib(end.rss)}, heap ${mib(end.heap)} (${end.spaces}) (RSS ${(end.rss / start.rss).toFixed(2)}x)`);
    for (const row of rows) console.log(row);
    if ((finals['401'] ?? 0) > 0 || thrown > 0) process.exitCode = 1;
  } finally {
    sim.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(`api soak failed: ${(error as Error).message}`);
  process.exitCode = 1;
});
