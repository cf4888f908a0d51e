// `npm run demo`: the whole flow on one machine, against the bundled identity-service
// simulator and a simulated terminal, through the built bundle exactly as a boot
// script or a technician would run it. Ends by itself; exits non-zero if any step
// does not do what it should.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startIdentitySim, type IdentitySim } from '../test/identity-sim';

const BUNDLE = join(__dirname, '..', 'dist', 'ereceipt-auth.js');

const terminal = {
  serial: 'POS-DEMO-000123',
  modelFramework: '1',
  osVersion: 'Debian 12',
  clientId: 'd0394a9f-0607-40de-a978-2d3eb8375b04',
  clientSecret: '6d62315e-d65a-4e41-9112-4195ea834edf',
  presharedKey: '03ac674216f3e15c761ee1a5e255f067953623c8b388b4459e13f978d7c846f4',
  // As the real service's tokens say it: the taxpayer's RIN, its tags in no fixed order.
  rin: '100200300',
  tags: ['SignatureRequired', 'B2C', 'B2B'],
};

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], input = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BUNDLE, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(input);
  });
}

function show(title: string, command: string, run: Run, hide: string[] = []): void {
  const mask = (text: string) => hide.reduce((t, s) => t.split(s).join(`${s.slice(0, 10)}... [token, ${s.length} characters]`), text);
  console.log(`\n== ${title}\n$ ${command}`);
  for (const line of `${mask(run.stdout)}${mask(run.stderr)}`.trimEnd().split('\n')) if (line) console.log(`  ${line}`);
  console.log(`  (exit status ${run.status})`);
}

function expectStatus(run: Run, status: number, step: string): void {
  if (run.status !== status) throw new Error(`demo step "${step}" ended with ${run.status}, expected ${status}`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ereceipt-auth-demo-'));
  let sim: IdentitySim | undefined;
  try {
    sim = await startIdentitySim({ terminals: [terminal] });
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify(
        {
          identityUrl: sim.url,
          hal: { driver: 'sim', serial: terminal.serial, modelFramework: terminal.modelFramework },
          osVersion: terminal.osVersion,
          credentialsFile: join(dir, 'lib', 'credentials'),
          tokenFile: join(dir, 'run', 'token.json'),
        },
        null,
        2,
      ),
    );
    console.log(`identity-service simulator at ${sim.url}; simulated terminal ${terminal.serial}; files in ${dir}`);
    const c = `--config ${config}`;
    const lines = (psk: string) => `client_id=${terminal.clientId}\nclient_secret=${terminal.clientSecret}\npresharedkey=${psk}\n`;

    let run = await cli(['--config', config, 'provision', '--stdin'], lines(terminal.presharedKey));
    show('Provision the terminal (values piped on stdin, checked with the service)', `printf 'client_id=...\\nclient_secret=...\\npresharedkey=...\\n' | ereceipt-auth ${c} provision --stdin`, run);
    expectStatus(run, 0, 'provision');

    run = await cli(['--config', config, 'provision', '--stdin'], lines('0000-typed-wrong-by-hand-42'));
    show('Provision again with a mistyped presharedkey: refused, old credentials kept', `... | ereceipt-auth ${c} provision --stdin`, run);
    expectStatus(run, 77, 'provision with a wrong key');

    run = await cli(['--config', config, 'boot', '--wait', '30']);
    show('Boot: log in and write the token file', `ereceipt-auth ${c} boot --wait 30`, run);
    expectStatus(run, 0, 'boot');

    run = await cli(['--config', config, 'status']);
    show('Status: whose token it is (a receipt must be issued by that taxpayer), and its tags', `ereceipt-auth ${c} status`, run);
    expectStatus(run, 0, 'status');
    if (!/taxpayer: +RIN 100200300\n/.test(run.stdout) || !/B2C tag: +yes\n/.test(run.stdout)) throw new Error('status did not show the taxpayer RIN and its B2C tag');

    const tokenFile = JSON.parse(readFileSync(join(dir, 'run', 'token.json'), 'utf8')) as Record<string, unknown> & { access_token: string };
    // What a POS application needs for a receipt: the issuer, whether it may submit, the service's clock.
    const shown = ['taxpayer_rin', 'taxpayer_tags', 'taxpayer_b2c', 'clock_offset_seconds', 'clock_offset_precision_seconds'];
    console.log(`\n   token file: ${shown.map((key) => `${key} ${JSON.stringify(tokenFile[key])}`).join(', ')}`);
    const before = sim.tokenRequestCount();
    run = await cli(['--config', config, 'token']);
    show('A POS application asks for the token (served from the token file)', `ereceipt-auth ${c} token`, run, [tokenFile.access_token]);
    expectStatus(run, 0, 'token');
    if (sim.tokenRequestCount() !== before || run.stdout.trim() !== tokenFile.access_token) throw new Error('token did not come from the token file');

    // A refresh: the service now issues 62-second tokens; `token` hands one out only
    // while it has at least 60 s left, so two seconds later it logs in again.
    sim.setLifetime(62);
    run = await cli(['--config', config, 'boot', '--wait', '30']);
    show('The service now issues 62-second tokens; boot again', `ereceipt-auth ${c} boot`, run);
    expectStatus(run, 0, 'boot with a short token');
    const short = JSON.parse(readFileSync(join(dir, 'run', 'token.json'), 'utf8')) as { access_token: string; expires_at: string };
    console.log('\n   ... waiting 2.5 s, until the token has less than 60 s left ...');
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const beforeRefresh = sim.tokenRequestCount();
    run = await cli(['--config', config, 'token']);
    const refreshed = JSON.parse(readFileSync(join(dir, 'run', 'token.json'), 'utf8')) as { access_token: string; expires_at: string };
    show('token refreshes the nearly expired token', `ereceipt-auth ${c} token`, run, [refreshed.access_token]);
    expectStatus(run, 0, 'token refresh');
    if (sim.tokenRequestCount() !== beforeRefresh + 1 || refreshed.access_token === short.access_token || run.stdout.trim() !== refreshed.access_token) {
      throw new Error('token did not refresh the nearly expired token');
    }
    console.log(`   token file: expires_at went from ${short.expires_at} to ${refreshed.expires_at}`);
    console.log(`\nDemo done: ${sim.tokenRequestCount()} requests reached the identity service.`);
  } finally {
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(`demo failed: ${(error as Error).message}`);
  process.exitCode = 1;
});
