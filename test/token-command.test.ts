// `ereceipt-auth token` as a POS application calls it: statically stable (a valid
// token in the file is printed when the service fails), one login for many callers
// at once, and never a login beside a running `run`.
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startIdentitySim, type IdentitySim } from './identity-sim';
import { runBundle } from './helpers/bundle';
import { provisionedIn } from './helpers/provisioned';
import { useTempDir } from './helpers/temp-dir';
import { processStartTime } from '../src/run-lock';

const tempDir = useTempDir();
const terminal = {
  serial: 'POS-TOKEN-0001',
  modelFramework: '1',
  osVersion: 'Debian 12',
  clientId: 'token-client-0001',
  clientSecret: 'token-secret-0123456789',
  presharedKey: 'token-psk-0123456789',
};
let sim: IdentitySim;
beforeAll(async () => {
  sim = await startIdentitySim({ terminals: [terminal] });
});
afterAll(() => sim.close());

const provisioned = () => provisionedIn(tempDir(), sim.url, terminal, { timeoutSeconds: 3 });

/** Leaves the file's token `seconds` of life, as if it had aged. */
function age(tokenFile: string, seconds: number): string {
  const file = JSON.parse(readFileSync(tokenFile, 'utf8')) as { access_token: string; expires_at: string };
  writeFileSync(tokenFile, JSON.stringify({ ...file, expires_at: new Date(Date.now() + seconds * 1000).toISOString() }));
  return file.access_token;
}

it('10 token calls at once that all need a new token make one login and print the same token', async () => {
  const { config } = await provisioned();
  const before = sim.tokenRequestCount();
  const runs = await Promise.all(Array.from({ length: 10 }, () => runBundle(['--config', config, 'token'])));
  const logins = sim.tokenRequestCount() - before;
  console.log(`10 parallel token calls needing a renewal: ${logins} login(s)`);
  expect(runs.map((r) => r.status)).toEqual(Array(10).fill(0));
  expect(new Set(runs.map((r) => r.stdout)).size).toBe(1);
  expect(runs.every((r) => r.stderr === '')).toBe(true);
  expect(logins).toBe(1);
});

it('the service failing while the file\'s token is still valid: that token, exit 0, one warning', async () => {
  const { config, tokenFile } = await provisioned();
  expect((await runBundle(['--config', config, 'boot'])).status).toBe(0);
  const held = age(tokenFile, 30);
  sim.injectFaults({ kind: 'status', status: 503 });
  const run = await runBundle(['--config', config, 'token']);
  expect(run.status).toBe(0);
  expect(run.stdout).toBe(`${held}\n`);
  expect(run.stderr).toMatch(new RegExp(`^ereceipt-auth: warning: identity service is busy \\(HTTP 503\\); printed the token in ${tokenFile.replace(/[.]/g, '\\.')}, valid for (29|30) s more\\n$`));
  // A rejection is no such case: it says so, with its own status.
  age(tokenFile, 30);
  sim.updateTerminal(terminal.clientId, { presharedKey: 'changed-on-the-portal' });
  try {
    const rejected = await runBundle(['--config', config, 'token']);
    expect(rejected.status).toBe(77);
    expect(rejected.stdout).toBe('');
  } finally {
    sim.updateTerminal(terminal.clientId, { presharedKey: terminal.presharedKey });
  }
});

it('while run holds the token file, token never logs in by itself', async () => {
  const { config, tokenFile } = await provisioned();
  expect((await runBundle(['--config', config, 'boot'])).status).toBe(0);
  // This test process stands in for a live `run`: the lock names it.
  symlinkSync(`${process.pid} ${processStartTime(process.pid) ?? ''}`, join(tokenFile, '..', 'run.pid'));
  const held = age(tokenFile, 30);
  const before = sim.tokenRequestCount();
  const run = await runBundle(['--config', config, 'token']);
  expect(run.status).toBe(0);
  expect(run.stdout).toBe(`${held}\n`);
  expect(run.stderr).toMatch(new RegExp(`^ereceipt-auth: warning: the token has (29|30) s left; ereceipt-auth run \\(pid ${process.pid}\\) renews it\\n$`));
  age(tokenFile, -5);
  const none = await runBundle(['--config', config, 'token']);
  expect(none.status).toBe(75);
  expect(none.stderr).toBe(
    `ereceipt-auth: error: there is no valid token in ${tokenFile}, and ereceipt-auth run (pid ${process.pid}) is the one that logs in: see "ereceipt-auth status" for why it has none; try again later\n`,
  );
  expect(sim.tokenRequestCount()).toBe(before);
});
