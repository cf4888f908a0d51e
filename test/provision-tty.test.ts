// A field technician at the serial console: the built bundle's interactive
// `provision` on a real pseudo-terminal, keystrokes typed one by one, against the
// identity-service simulator over loopback HTTP.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startIdentitySim, type IdentitySim, type SimTerminal } from './identity-sim';
import { readCredentials } from '../src/credentials';
import { BUNDLE, runBundle } from './helpers/bundle';
import { needs } from './helpers/needs';
import { ptySession, type PtyStep } from './helpers/pty-session';
import { useTempDir } from './helpers/temp-dir';

const tempDir = useTempDir();
/** A real pseudo-terminal comes from python3's pty module. */
const withPty = needs('python3');
const terminal: SimTerminal = {
  serial: 'POS-TTY-0001',
  modelFramework: '3',
  osVersion: 'Debian 12',
  clientId: 'd0394a9f-0607-40de-a978-2d3eb8375b04',
  clientSecret: '6d62315e-d65a-4e41-9112-4195ea834edf',
  presharedKey: '03ac674216f3e15c761ee1a5e255f067953623c8b388b4459e13f978d7c846f4',
};
const SECRETS = [terminal.clientSecret, terminal.presharedKey, 'a-wrong-psk-value', 'old-secret-000001', 'old-psk-00000001'];
let sim: IdentitySim;

beforeAll(async () => {
  sim = await startIdentitySim({ terminals: [terminal] });
});
afterAll(() => sim.close());

function setup(): { dir: string; config: string; credentialsFile: string } {
  const dir = tempDir();
  const config = join(dir, 'config.json');
  const credentialsFile = join(dir, 'lib', 'credentials');
  writeFileSync(
    config,
    JSON.stringify({ identityUrl: sim.url, hal: { driver: 'sim', serial: terminal.serial, modelFramework: '3' }, osVersion: 'Debian 12', credentialsFile, tokenFile: join(dir, 'run', 'token.json') }),
  );
  return { dir, config, credentialsFile };
}

function provision(dir: string, config: string, steps: PtyStep[], extra: string[] = []) {
  return ptySession(dir, [process.execPath, BUNDLE, '--config', config, 'provision', ...extra], steps, { TERM: 'vt100' });
}

/** What a technician must never see on the screen, and how the screen must look. */
function expectConsoleSafe(output: string): void {
  for (const secret of SECRETS) expect(output).not.toContain(secret);
  // eslint-disable-next-line no-control-regex
  expect(output).not.toMatch(/\x1b\[/);
  // Every line the program writes fits 80 columns; an echo of what was typed is the technician's.
  for (const line of output.split(/\r?\n/)) if (!line.startsWith('client_id: ')) expect(line.replace(/[\b]/g, '').length).toBeLessThan(80);
  // eslint-disable-next-line no-control-regex
  expect(output).toMatch(/^[\x07\x08\x0a\x0d\x20-\x7e]*$/);
}

const upToSecret: PtyStep[] = [
  { expect: 'serial number +POS-TTY-0001\\r\\n  model framework +3\\r\\n  OS version +Debian 12', send: '' },
  { expect: 'client_id: ', send: `${terminal.clientId}\r` },
];

withPty('the whole happy path: identity shown, values typed, checked, saved', async () => {
  const { dir, config, credentialsFile } = setup();
  const r = await provision(dir, config, [
    ...upToSecret,
    { expect: 'client_secret \\(hidden\\): ', send: `${terminal.clientSecret}\r` },
    { expect: 'presharedkey \\(hidden\\): ', send: `${terminal.presharedKey}\r` },
    { expect: 'Save these credentials for terminal POS-TTY-0001\\? \\[y/N\\]: ', send: 'y\r' },
    { expect: 'Credentials saved for terminal POS-TTY-0001 \\(client_id \\.\\.\\.5b04\\)\\.' },
  ]);
  expect(r.failedStep).toBeNull();
  expect(r.status).toBe(0);
  expect(r.output).toContain('Stored credentials: none');
  expect(r.output).toMatch(/Checking with the identity service at 127\.0\.0\.1:\d+ \.*\s*accepted\.\r\nThe token is for taxpayer RIN \d{9} \(tags B2B, B2C\): check that this is the\r\n  shop's taxpayer\.\r\n/);
  expect(r.output).toContain(`client_id: ${terminal.clientId}\r\n`);
  expectConsoleSafe(r.output);
  expect({ echo: r.echo, icanon: r.icanon }).toEqual({ echo: true, icanon: true });
  const saved = await readCredentials(credentialsFile, { serial: terminal.serial });
  expect(saved.presharedKey.reveal()).toBe(terminal.presharedKey);
  expect(existsSync(join(dir, 'run', 'token.json'))).toBe(true);
});

withPty('a typo corrected with Backspace and DEL, a line cleared with Ctrl-U', async () => {
  const { dir, config, credentialsFile } = setup();
  const r = await provision(dir, config, [
    ...upToSecret,
    // "XX" then two erasures (BS and DEL), then the secret; a garbage line cleared with Ctrl-U first.
    { expect: 'client_secret \\(hidden\\): ', send: `garbage\x15${terminal.clientSecret.slice(0, 10)}XX\x08\x7f${terminal.clientSecret.slice(10)}\r` },
    { expect: 'presharedkey \\(hidden\\): ', send: `${terminal.presharedKey}Q\x7f\r` },
    { expect: '\\[y/N\\]: ', send: 'y\r' },
    { expect: 'Credentials saved' },
  ]);
  expect(r.failedStep).toBeNull();
  expect(r.status).toBe(0);
  expectConsoleSafe(r.output);
  const saved = await readCredentials(credentialsFile, { serial: terminal.serial });
  expect(saved.clientSecret.reveal()).toBe(terminal.clientSecret);
  expect(saved.presharedKey.reveal()).toBe(terminal.presharedKey);
});

withPty('a refused presharedkey is typed again, alone', async () => {
  const { dir, config, credentialsFile } = setup();
  const before = sim.tokenRequestCount();
  const r = await provision(dir, config, [
    ...upToSecret,
    { expect: 'client_secret \\(hidden\\): ', send: `${terminal.clientSecret}\r` },
    { expect: 'presharedkey \\(hidden\\): ', send: 'a-wrong-psk-value\r' },
    { expect: '\\[y/N\\]: ', send: 'y\r' },
    { expect: 'refused\\.\\r\\n(\\r\\n)?presharedkey rejected by the identity service \\(invalid_presharedkey\\)\\.' },
    { expect: 'Type presharedkey again\\? \\[Y/n\\]: ', send: '\r' },
    { expect: 'presharedkey \\(hidden\\): ', send: `${terminal.presharedKey}\r` },
    { expect: 'accepted\\.' },
    { expect: 'Credentials saved' },
  ]);
  expect(r.failedStep).toBeNull();
  expect(r.status).toBe(0);
  expect(sim.tokenRequestCount()).toBe(before + 2);
  expectConsoleSafe(r.output);
  expect((await readCredentials(credentialsFile, { serial: terminal.serial })).presharedKey.reveal()).toBe(terminal.presharedKey);
});

withPty('Ctrl-C in the middle leaves the old credentials file byte for byte, and the terminal as it was', async () => {
  const { dir, config, credentialsFile } = setup();
  const old = `client_id=11111111-2222-3333-4444-555555555555\nclient_secret=old-secret-000001\npresharedkey=old-psk-00000001\n`;
  expect((await runBundle(['--config', config, 'provision', '--stdin', '--offline'], { input: old })).status).toBe(0);
  const before = readFileSync(credentialsFile);
  const r = await provision(dir, config, [
    { expect: 'Stored credentials: client_id \\.\\.\\.5555 \\(they will be replaced\\)' },
    { expect: 'client_id: ', send: `${terminal.clientId}\r` },
    { expect: 'client_secret \\(hidden\\): ', send: `${terminal.clientSecret.slice(0, 12)}\x03` },
    { expect: 'ereceipt-auth: error: stopped: the previous credentials are in place' },
  ]);
  expect(r.failedStep).toBeNull();
  expect(r.status).toBe(130);
  expect(readFileSync(credentialsFile).equals(before)).toBe(true);
  expect({ echo: r.echo, icanon: r.icanon }).toEqual({ echo: true, icanon: true });
  expectConsoleSafe(r.output);
});

withPty('Ctrl-C while the service is being asked saves nothing', async () => {
  const { dir, config, credentialsFile } = setup();
  sim.injectFaults({ kind: 'delay', ms: 3000 });
  const r = await provision(dir, config, [
    ...upToSecret,
    { expect: 'client_secret \\(hidden\\): ', send: `${terminal.clientSecret}\r` },
    { expect: 'presharedkey \\(hidden\\): ', send: `${terminal.presharedKey}\r` },
    { expect: '\\[y/N\\]: ', send: 'y\r' },
    { expect: 'Checking with the identity service', send: '\x03' },
    { expect: 'ereceipt-auth: error: stopped: the previous credentials are in place' },
  ]);
  expect(r.failedStep).toBeNull();
  expect(r.status).toBe(130);
  expect(existsSync(credentialsFile)).toBe(false);
  expect({ echo: r.echo, icanon: r.icanon }).toEqual({ echo: true, icanon: true });
});

withPty('a hang-up (SIGHUP) at a prompt restores the terminal and saves nothing', async () => {
  const { dir, config, credentialsFile } = setup();
  const r = await provision(dir, config, [
    ...upToSecret,
    { expect: 'client_secret \\(hidden\\): ', send: 'half-typed' },
    { expect: '', delay: 100, signal: 'HUP' },
    { expect: 'stopped: the previous credentials are in place' },
  ]);
  expect(r.failedStep).toBeNull();
  expect(r.status).toBe(130);
  expect(existsSync(credentialsFile)).toBe(false);
  expect({ echo: r.echo, icanon: r.icanon }).toEqual({ echo: true, icanon: true });
});

withPty('the console line hung up while a secret is typed: ends like Ctrl-C, old credentials intact, no abort and no core dump', async () => {
  const { dir, config, credentialsFile } = setup();
  // Credentials from an earlier provisioning, which must survive byte for byte.
  const lines = `client_id=${terminal.clientId}\nclient_secret=${terminal.clientSecret}\npresharedkey=${terminal.presharedKey}\n`;
  expect((await runBundle(['--config', config, 'provision', '--stdin', '--offline'], { input: lines })).status).toBe(0);
  const saved = readFileSync(credentialsFile);
  for (let i = 0; i < 3; i++) {
    const r = await provision(dir, config, [
      { expect: 'client_id: ', send: `${terminal.clientId}\r` },
      { expect: 'client_secret \\(hidden\\): ', send: 'half-typ', delay: 50, hangup: true },
    ]);
    // Not 134 (SIGABRT from Node's stdio reset on a dead terminal), not -9 (killed by the helper after its timeout).
    expect(r.status).toBe(130);
    expect(readFileSync(credentialsFile).equals(saved)).toBe(true);
  }
}, 60_000);

withPty('a secret typed ahead after a refused client_id is not echoed into the next prompt', async () => {
  const { dir, config } = setup();
  const r = await provision(dir, config, [
    // A client_id with a space, and the client_secret typed straight after it.
    { expect: 'client_id: ', send: `bad id\r${terminal.clientSecret}\r` },
    { expect: 'type it again\\.' },
    { expect: 'client_id: ', send: '\x03' },
  ]);
  expect(r.failedStep).toBeNull();
  expectConsoleSafe(r.output);
});

withPty('values outside the limits are refused as they are typed; a non-GUID client_id is only warned about', async () => {
  const { dir, config } = setup();
  const r = await provision(dir, config, [
    { expect: 'client_id: ', send: 'has space\r' },
    { expect: 'client_id has spaces or characters other than printable ASCII; type it again\\.', send: '' },
    { expect: 'client_id: ', delay: 400, send: `${'x'.repeat(101)}\r` },
    { expect: 'client_id is 101 characters long; the limit is 100; type it again\\.' },
    { expect: 'client_id: ', delay: 400, send: 'POS-CLIENT-7\r' },
    { expect: "Warning: client_id does not look like the portal's \\(8-4-4-4-12 hex digits\\)" },
    { expect: 'client_secret \\(hidden\\): ', send: '\x03' },
  ]);
  expect(r.failedStep).toBeNull();
  expect(r.status).toBe(130);
  expectConsoleSafe(r.output);
});

withPty('--offline saves after a warning, without asking the service', async () => {
  const { dir, config, credentialsFile } = setup();
  const before = sim.tokenRequestCount();
  const r = await provision(
    dir,
    config,
    [
      ...upToSecret,
      { expect: 'client_secret \\(hidden\\): ', send: `${terminal.clientSecret}\r` },
      { expect: 'presharedkey \\(hidden\\): ', send: `${terminal.presharedKey}\r` },
      { expect: 'Warning: --offline: the credentials will be saved without checking them' },
      { expect: 'without checking\\? \\[y/N\\]: ', send: 'y\r' },
      { expect: 'Credentials saved for terminal POS-TTY-0001 \\(client_id \\.\\.\\.5b04\\), not checked\\.' },
    ],
    ['--offline'],
  );
  expect(r.failedStep).toBeNull();
  expect(r.status).toBe(0);
  expect(sim.tokenRequestCount()).toBe(before);
  expect(existsSync(credentialsFile)).toBe(true);
});

it('provision --check verifies the stored credentials and changes nothing', async () => {
  const { config, credentialsFile } = setup();
  const input = `client_id=${terminal.clientId}\nclient_secret=${terminal.clientSecret}\npresharedkey=${terminal.presharedKey}\n`;
  expect((await runBundle(['--config', config, 'provision', '--stdin'], { input })).status).toBe(0);
  const before = readFileSync(credentialsFile);
  const ok = await runBundle(['--config', config, 'provision', '--check']);
  expect(ok).toMatchObject({ status: 0, stdout: expect.stringMatching(/are accepted for taxpayer RIN \d{9} \(tags B2B, B2C\) \(a token for 3600 s was issued\)\n$/) });
  sim.updateTerminal(terminal.clientId, { presharedKey: 'rotated-on-portal-01' });
  try {
    const refused = await runBundle(['--config', config, 'provision', '--check']);
    expect(refused).toMatchObject({ status: 77, stderr: expect.stringMatching(/presharedkey rejected by the identity service \(invalid_presharedkey\)/) });
  } finally {
    sim.updateTerminal(terminal.clientId, { presharedKey: terminal.presharedKey });
  }
  expect(readFileSync(credentialsFile).equals(before)).toBe(true);
});

it('without a terminal and without --stdin, the usage error names --stdin', async () => {
  const { config } = setup();
  const r = await runBundle(['--config', config, 'provision']);
  expect(r).toMatchObject({ status: 64, stderr: expect.stringMatching(/pipe client_id=, client_secret= and presharedkey= lines to provision --stdin/) });
});
