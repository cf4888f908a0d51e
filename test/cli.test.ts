// The built bundle, run as a boot script or a technician would, against the
// identity-service simulator over real loopback HTTP, with real files.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { startIdentitySim, verifySimToken, type IdentitySim, type SimTerminal } from './identity-sim';
import { BUNDLE, runBundle, transcript } from './helpers/bundle';
import { needs } from './helpers/needs';
import { useTempDir } from './helpers/temp-dir';
import { expectValidTokenFile } from './helpers/token-file-schema';


const terminal: SimTerminal = {
  serial: 'POS-TEST-0042',
  modelFramework: '1',
  osVersion: 'Debian 12',
  clientId: 'd0394a9f-0607-40de-a978-2d3eb8375b04',
  clientSecret: '6d62315e-d65a-4e41-9112-4195ea834edf',
  presharedKey: '03ac674216f3e15c761ee1a5e255f067953623c8b388b4459e13f978d7c846f4',
  rin: '100200300',
  tags: ['B2B', 'B2C'],
};
const input = (t: Pick<SimTerminal, 'clientId' | 'clientSecret' | 'presharedKey'>) =>
  `# pasted from the taxpayer portal\nclient_id=${t.clientId}\nclient_secret=${t.clientSecret}\npresharedkey=${t.presharedKey}\n`;

let sim: IdentitySim;
let keepAlive: Server;
let keepAliveUrl: string;
/** Every access token the tests have seen: none may appear in any output but `token`'s stdout. */
const tokensSeen = new Set<string>();

beforeAll(async () => {
  // Answers 503 and keeps every connection open: the CLI must not wait for it to close.
  keepAlive = createHttpServer((req, res) => req.resume().on('end', () => res.writeHead(503, { connection: 'keep-alive', 'keep-alive': 'timeout=60' }).end('busy')));
  keepAlive.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => keepAlive.listen(0, '127.0.0.1', resolve));
  keepAliveUrl = `http://127.0.0.1:${(keepAlive.address() as { port: number }).port}`;
  sim = await startIdentitySim({
    terminals: [
      terminal,
      { ...terminal, serial: 'POS-B2B-ONLY', clientId: 'b2b-only-client-0001', rin: '200300400', tags: ['B2B'] },
      { ...terminal, serial: 'POS-TAGS-MIXED', clientId: 'mixed-tags-client-01', rin: '300400500', tags: ['SignatureRequired', 'B2C', 'B2B'] },
      { ...terminal, serial: 'POS-NO-TAGS', clientId: 'no-tags-client-0001', rin: '400500600', tags: null },
    ],
  });
});
afterAll(async () => {
  keepAlive.closeAllConnections();
  await new Promise((resolve) => keepAlive.close(resolve));
  await sim.close();
});

interface Setup {
  dir: string;
  config: string;
  tokenFile: string;
  credentialsFile: string;
}

const setups: Setup[] = [];

function setup(overrides: Record<string, unknown> = {}, hal: Record<string, unknown> = {}): Setup {
  const dir = tempDir();
  const tokenFile = join(dir, 'run', 'token.json');
  const credentialsFile = join(dir, 'lib', 'credentials');
  const config = join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      identityUrl: sim.url,
      hal: { driver: 'sim', serial: terminal.serial, modelFramework: terminal.modelFramework, ...hal },
      osVersion: terminal.osVersion,
      credentialsFile,
      tokenFile,
      timeoutSeconds: 5,
      ...overrides,
    }),
  );
  const made = { dir, config, tokenFile, credentialsFile };
  setups.push(made);
  return made;
}

function noteTokens(s: Setup): void {
  if (existsSync(s.tokenFile)) tokensSeen.add((JSON.parse(readFileSync(s.tokenFile, 'utf8')) as { access_token: string }).access_token);
}

async function provisioned(overrides: Record<string, unknown> = {}, hal: Record<string, unknown> = {}): Promise<Setup> {
  const s = setup(overrides, hal);
  const run = await runBundle(['--config', s.config, 'provision', '--stdin', '--offline'], { input: input(terminal) });
  expect(run.status).toBe(0);
  return s;
}

describe('exit 0', () => {
  it('provisions, boots, reports status and hands out the token', async () => {
    const s = setup();
    let run = await runBundle(['--config', s.config, 'provision', '--stdin'], { input: input(terminal) });
    expect(run).toMatchObject({ status: 0, stderr: '' });
    expect(run.stdout).toBe('credentials saved for terminal POS-TEST-0042 (client_id ...5b04), accepted for taxpayer RIN 100200300 (tags B2B, B2C)\n');
    expect(statSync(s.credentialsFile).mode & 0o777).toBe(0o600);

    const requestsBefore = sim.tokenRequestCount();
    run = await runBundle(['--config', s.config, 'boot']);
    expect(run.status).toBe(0);
    expect(run.stderr).toMatch(/^ereceipt-auth: authenticated terminal POS-TEST-0042 for taxpayer RIN 100200300; token valid until \d{4}-\d\d-\d\dT.*Z \(scope InvoicingAPI\)\n$/);
    expect(sim.tokenRequestCount()).toBe(requestsBefore + 1);
    const last = sim.requests[sim.requests.length - 1];
    expect(last).toMatchObject({
      method: 'POST',
      path: '/connect/token',
      status: 200,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        posserial: terminal.serial,
        pososversion: terminal.osVersion,
        posmodelframework: terminal.modelFramework,
        presharedkey: terminal.presharedKey,
      },
      form: { grant_type: 'client_credentials', client_id: terminal.clientId, client_secret: terminal.clientSecret },
    });
    expect(last?.form).not.toHaveProperty('scope');

    const file = JSON.parse(readFileSync(s.tokenFile, 'utf8')) as Record<string, string>;
    tokensSeen.add(file['access_token'] as string);
    expect(Object.keys(file).sort()).toEqual(['access_token', 'clock_offset_precision_seconds', 'clock_offset_seconds', 'expires_at', 'obtained_at', 'scope', 'taxpayer_b2c', 'taxpayer_rin', 'taxpayer_tags', 'token_type']);
    expectValidTokenFile(file);
    expect(file['token_type']).toBe('Bearer');
    const lifetime = (Date.parse(file['expires_at'] as string) - Date.parse(file['obtained_at'] as string)) / 1000;
    // The service's hour, less at most two seconds: rounded down, and never past exp.
    expect(lifetime).toBeLessThanOrEqual(3600);
    expect(lifetime).toBeGreaterThan(3597);
    expect(statSync(s.tokenFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(s.dir, 'run')).mode & 0o777).toBe(0o700);

    run = await runBundle(['--config', s.config, 'token']);
    expect(run).toMatchObject({ status: 0, stderr: '', stdout: `${file['access_token']}\n` });
    expect(sim.tokenRequestCount()).toBe(requestsBefore + 1);

    run = await runBundle(['--config', s.config, 'status']);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/serial: +POS-TEST-0042/);
    expect(run.stdout).toMatch(/credentials: +ok \(client_id \.\.\.5b04\)/);
    expect(run.stdout).toMatch(/token: +valid until/);
    expect(run.stdout).toMatch(/taxpayer: +RIN 100200300\n/);
    expect(run.stdout).toMatch(/B2C tag: +yes/);

    run = await runBundle(['--config', s.config, 'status', '--json']);
    const report = JSON.parse(run.stdout) as Record<string, Record<string, unknown>>;
    expect(report['device']).toMatchObject({ serial: terminal.serial, modelFramework: '1', osVersion: 'Debian 12' });
    expect(report['credentials']).toMatchObject({ state: 'ok', clientIdEnd: '5b04' });
    expect(report['token']).toMatchObject({ state: 'valid', scope: 'InvoicingAPI', taxpayerRin: '100200300', taxpayerTags: ['B2B', 'B2C'], b2c: true });
  });

  it('token serves the file while it has 60 s or more left', async () => {
    const s = await provisioned();
    sim.setLifetime(90);
    try {
      expect((await runBundle(['--config', s.config, 'boot'])).status).toBe(0);
      noteTokens(s);
      const file = JSON.parse(readFileSync(s.tokenFile, 'utf8')) as { access_token: string };
      const before = sim.tokenRequestCount();
      const run = await runBundle(['--config', s.config, 'token']);
      expect(run).toMatchObject({ status: 0, stderr: '', stdout: `${file.access_token}\n` });
      expect(sim.tokenRequestCount()).toBe(before);
    } finally {
      sim.setLifetime(3600);
    }
  });

  it('token logs in again when the file has less than 60 s left', async () => {
    const s = await provisioned();
    sim.setLifetime(59);
    try {
      expect((await runBundle(['--config', s.config, 'boot'])).status).toBe(0);
      const first = readFileSync(s.tokenFile, 'utf8');
      noteTokens(s);
      const before = sim.tokenRequestCount();
      const run = await runBundle(['--config', s.config, 'token']);
      expect(run.status).toBe(0);
      expect(sim.tokenRequestCount()).toBe(before + 1);
      expect(readFileSync(s.tokenFile, 'utf8')).not.toBe(first);
      noteTokens(s);
      expect(run.stdout.trim()).toBe((JSON.parse(readFileSync(s.tokenFile, 'utf8')) as { access_token: string }).access_token);
    } finally {
      sim.setLifetime(3600);
    }
  });

  it('boot retries transient failures inside --wait', async () => {
    const s = await provisioned();
    sim.injectFaults({ kind: 'status', status: 503 }, { kind: 'drop' });
    const run = await runBundle(['--config', s.config, 'boot', '--wait', '20']);
    noteTokens(s);
    expect(run.status).toBe(0);
    expect(run.stderr).toMatch(/warning: identity service is busy \(HTTP 503\); retrying in [1-9]\d* s/);
    expect(run.stderr).toMatch(/warning: identity service at 127\.0\.0\.1:\d+ is unreachable .*retrying/);
  });

  it('text the service sends is one printable line wherever it is shown or kept', async () => {
    const s = await provisioned();
    const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const forged = `${part({ alg: 'RS256' })}.${part({ nbf: now, exp: now + 3600, TaxRin: '100\u001b[2J200' })}.c2ln`;
    tokensSeen.add(forged);
    const scope = 'InvoicingAPI\u001b[2J\r\nereceipt-auth: all good\u0085\u009b';
    sim.injectFaults({ kind: 'status', status: 200, body: JSON.stringify({ access_token: forged, token_type: 'Bearer', expires_in: 3600, scope }) });
    const boot = await runBundle(['--config', s.config, 'boot']);
    expect(boot.status).toBe(0);
    expect(boot.stderr).toMatch(/^ereceipt-auth: authenticated terminal POS-TEST-0042; token valid until \S+ \(scope InvoicingAPI\\u\{1b\}\[2J\\u\{d\}\\u\{a\}ereceipt-auth: all good\\u\{85\}\\u\{9b\}\)\n$/);
    const status = await runBundle(['--config', s.config, 'status']);
    expect(status.status).toBe(0);
    // No control character at all, and the RIN with one in it is not taken for a RIN.
    expect(status.stdout).toMatch(/^[\x20-\x7e\n]*$/);
    expect(status.stdout).toMatch(/taxpayer: +not stated in the token\n/);
    expect(readFileSync(s.tokenFile, 'utf8')).toMatch(/^[\x20-\x7e\n]*$/);
  });

  it('a FIFO where the token file should be neither hangs token nor status', async () => {
    const s = await provisioned();
    mkdirSync(join(s.dir, 'run'), { mode: 0o700 });
    execFileSync('mkfifo', [s.tokenFile]);
    const status = await runBundle(['--config', s.config, 'status'], { timeoutMs: 5000 });
    expect(status.signal).toBeNull();
    expect(status.stdout).toMatch(/token: +none in /);
    const token = await runBundle(['--config', s.config, 'token'], { timeoutMs: 5000 });
    noteTokens(s);
    expect(token.status).toBe(0);
    expect(statSync(s.tokenFile).isFile()).toBe(true);
  });

  it.each([
    ['SignatureRequired, B2C, B2B', 'POS-TAGS-MIXED', 'mixed-tags-client-01', '300400500', ['SignatureRequired', 'B2C', 'B2B'], true],
    ['B2B only', 'POS-B2B-ONLY', 'b2b-only-client-0001', '200300400', ['B2B'], false],
    ['no tag claim', 'POS-NO-TAGS', 'no-tags-client-0001', '400500600', undefined, null],
  ] as const)('a token with %s: the RIN and tags reach provision, the token file and status; B2C warned only when absent', async (_name, serial, clientId, rin, tags, b2c) => {
    const s = setup({}, { serial });
    const provision = await runBundle(['--config', s.config, 'provision', '--stdin'], { input: input({ ...terminal, clientId }) });
    expect(provision.status).toBe(0);
    expect(provision.stdout).toBe(`credentials saved for terminal ${serial} (client_id ...${clientId.slice(-4)}), accepted for taxpayer RIN ${rin} (${tags ? `tags ${tags.join(', ')}` : 'tags not stated'})\n`);
    const boot = await runBundle(['--config', s.config, 'boot']);
    noteTokens(s);
    expect(boot.status).toBe(0);
    const warnings = boot.stderr.split('\n').filter((line) => line.includes('B2C'));
    expect(warnings).toEqual(b2c === false ? ['ereceipt-auth: warning: the token does not carry the B2C tag, so this taxpayer cannot submit receipts: ask for the B2C tag on the taxpayer portal'] : []);

    const file = JSON.parse(readFileSync(s.tokenFile, 'utf8')) as Record<string, unknown>;
    expect(file['taxpayer_rin']).toBe(rin);
    expect(file['taxpayer_tags']).toEqual(tags);
    if (!tags) expect(file).not.toHaveProperty('taxpayer_tags');

    const plain = await runBundle(['--config', s.config, 'status']);
    expect(plain.status).toBe(0);
    expect(plain.stdout).toContain(`taxpayer:     RIN ${rin}\n`);
    expect(plain.stdout).toContain(`tags:         ${tags ? tags.join(', ') : 'not stated in the token'}\n`);
    expect(plain.stdout).toContain(`B2C tag:      ${b2c === null ? 'not stated in the token' : b2c ? 'yes' : 'NO - this taxpayer cannot submit receipts'}\n`);
    const json = JSON.parse((await runBundle(['--config', s.config, 'status', '--json'])).stdout) as { token: Record<string, unknown> };
    expect(json.token).toMatchObject({ taxpayerRin: rin, taxpayerTags: tags ?? null, b2c });
  });

  it('re-provisioning replaces the token of the old credentials; --offline removes it', async () => {
    const s = await provisioned();
    expect((await runBundle(['--config', s.config, 'boot'])).status).toBe(0);
    noteTokens(s);
    const before = readFileSync(s.tokenFile, 'utf8');
    expect((await runBundle(['--config', s.config, 'provision', '--stdin'], { input: input(terminal) })).status).toBe(0);
    noteTokens(s);
    expect(readFileSync(s.tokenFile, 'utf8')).not.toBe(before);
    expect((await runBundle(['--config', s.config, 'provision', '--stdin', '--offline'], { input: input(terminal) })).status).toBe(0);
    expect(existsSync(s.tokenFile)).toBe(false);
  });

  it.each([
    ['an existing folder of its own', (dir: string) => join(dir, 'run')],
    ['the configuration folder itself', (dir: string) => dir],
  ])('never re-modes %s: one open to others is refused by name (73), and stays as it was', async (_name, folderOf) => {
    const s = await provisioned();
    const folder = folderOf(s.dir);
    mkdirSync(folder, { recursive: true });
    chmodSync(folder, 0o755);
    const tokenFile = join(folder, 'token.json');
    writeFileSync(s.config, JSON.stringify({ ...JSON.parse(readFileSync(s.config, 'utf8')), tokenFile }));
    const boot = await runBundle(['--config', s.config, 'boot']);
    expect(boot.status).toBe(73);
    expect(boot.stderr).toBe(
      `ereceipt-auth: error: the folder ${folder} of the token file is open to other users (mode 755), and a folder that exists is never changed: run chmod 700 ${folder} if it is the service's own, or give the file a folder of its own\n`,
    );
    expect(statSync(folder).mode & 0o7777).toBe(0o755);
    expect(existsSync(tokenFile)).toBe(false);
  });

  needs('root')('folders it makes as root belong to the owner of the folder above: the service user is not locked out', async () => {
    const s = await provisioned();
    const home = join(s.dir, 'service-home');
    mkdirSync(home, { mode: 0o700 });
    chownSync(home, 65534, 65534);
    const tokenFile = join(home, 'run', 'ereceipt', 'token.json');
    writeFileSync(s.config, JSON.stringify({ ...JSON.parse(readFileSync(s.config, 'utf8')), tokenFile }));
    expect((await runBundle(['--config', s.config, 'boot'])).status).toBe(0);
    noteTokens(s);
    for (const made of [join(home, 'run'), join(home, 'run', 'ereceipt')]) expect(statSync(made)).toMatchObject({ uid: 65534, gid: 65534, mode: expect.any(Number) });
    expect(statSync(join(home, 'run')).mode & 0o777).toBe(0o700);
    expect(statSync(tokenFile).uid).toBe(65534);
  });

  it('a reader that goes away is not an error', async () => {
    const s = await provisioned();
    expect((await runBundle(['--config', s.config, 'boot'])).status).toBe(0);
    noteTokens(s);
    const { spawnSync } = await import('node:child_process');
    // POSIX sh has no pipefail: the status comes out on a descriptor of its own.
    const shell = spawnSync('sh', ['-c', `exec 3>&1; { "${process.execPath}" "$0" --config "$1" token; echo "status=$?" >&3; } | true`, BUNDLE, s.config], { encoding: 'utf8' });
    expect({ stdout: shell.stdout, stderr: shell.stderr }).toEqual({ stdout: 'status=0\n', stderr: '' });
    const piped = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "$0" --config "$1" token | true`, BUNDLE, s.config], { encoding: 'utf8' });
    expect({ status: piped.status, stderr: piped.stderr }).toEqual({ status: 0, stderr: '' });
  });

  it('exits as soon as it is done, even when the server keeps the connection open', async () => {
    const s = await provisioned({ identityUrl: keepAliveUrl });
    const run = await runBundle(['--config', s.config, 'boot', '--wait', '0']);
    expect(run.status).toBe(75);
    expect(run.ms).toBeLessThan(1500);
  });

  it('--help and --version', async () => {
    expect(await runBundle(['--help'])).toMatchObject({ status: 0, stdout: expect.stringMatching(/^Usage: ereceipt-auth/) });
    expect(await runBundle(['--version'])).toMatchObject({ status: 0, stdout: expect.stringMatching(/^ereceipt-auth \d+\.\d+\.\d+\n$/) });
  });

  it('reads the configuration named by ERECEIPT_AUTH_CONFIG', async () => {
    const s = await provisioned();
    const run = await runBundle(['status', '--json'], { env: { ERECEIPT_AUTH_CONFIG: s.config } });
    expect(run.status).toBe(75); // provisioned offline, no token yet
    expect((JSON.parse(run.stdout) as { config: string }).config).toBe(s.config);
  });
});

describe('failures: one line on stderr, the exit status of SPEC.md', () => {
  async function fails(args: string[], status: number, message: RegExp, inputText?: string, env?: NodeJS.ProcessEnv) {
    const run = await runBundle(args, { ...(inputText === undefined ? {} : { input: inputText }), ...(env ? { env } : {}) });
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status, stderr: expect.stringMatching(message) });
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines.filter((line) => line.startsWith('ereceipt-auth: error: '))).toHaveLength(1);
    expect(lines.every((line) => line.startsWith('ereceipt-auth: '))).toBe(true);
    return run;
  }

  it('64: unknown command, bad option, secret as an argument, no --stdin', async () => {
    const s = setup();
    await fails(['--config', s.config, '--wait', '5', 'boot'], 64, /the option --wait belongs after the command, as in "ereceipt-auth boot --wait 30"/);
    await fails(['--config=', 'boot'], 64, /--config needs a file name/);
    await fails(['--config', s.config, 'frobnicate'], 64, /^ereceipt-auth: error: unknown command "frobnicate"/);
    await fails(['--config', s.config, 'boot', '--wait', 'soon'], 64, /--wait takes a number of seconds/);
    const run = await fails(['--config', s.config, 'provision', `--client-secret=${terminal.clientSecret}`], 64, /secrets are never taken as arguments/);
    expect(run.stderr).toContain('--client-secret');
    await fails(['--config', s.config, 'provision', '--stdin', terminal.presharedKey], 64, /provision does not take arguments/);
    await fails(['--config', s.config, 'provision'], 64, /there is nobody to ask: pipe client_id=, client_secret= and presharedkey= lines to provision --stdin/);
    await fails(['--config', s.config, 'provision', '--stdin'], 64, /lacks presharedkey: nothing was saved/, `client_id=a\nclient_secret=${terminal.clientSecret}\n`);
    expect(existsSync(s.credentialsFile)).toBe(false);
  });

  it('65: the device answers with bad data', async () => {
    const s = setup({}, { fault: 'garbage' });
    await fails(['--config', s.config, 'boot'], 65, /simulated terminal has a serial number that is not printable ASCII/);
  });

  it('69: no device', async () => {
    const s = setup({}, { fault: 'missing' });
    // A device that does not answer may be starting up: boot tries it again within --wait, as run would.
    const started = Date.now();
    const run = await fails(['--config', s.config, 'boot', '--wait', '3'], 69, /\nereceipt-auth: error: simulated terminal: no device answers: check the hal setting in the configuration\n$/);
    expect(Date.now() - started).toBeLessThan(6000);
    expect(run.stderr).toMatch(/^ereceipt-auth: warning: simulated terminal: no device answers; retrying in [1-9]\d* s\n/);
    await fails(['--config', s.config, 'boot', '--wait', '0'], 69, /^ereceipt-auth: error: simulated terminal: no device answers: check the hal setting in the configuration\n$/);
  });

  it('70: a failure nobody classified, without a stack trace', async () => {
    const s = setup({}, { fault: 'crash' });
    await fails(['--config', s.config, 'boot'], 70, /^ereceipt-auth: error: internal error \(TypeError: simulated driver failure\): please report it/);
  });

  it('73: the token file cannot be written', async () => {
    const s = await provisioned();
    writeFileSync(join(s.dir, 'blocker'), '');
    writeFileSync(s.config, JSON.stringify({ ...JSON.parse(readFileSync(s.config, 'utf8')), tokenFile: join(s.dir, 'blocker', 'token.json') }));
    const blocker = join(s.dir, 'blocker');
    await fails(['--config', s.config, 'boot'], 73, new RegExp(`^ereceipt-auth: error: the folder ${blocker} of the token file cannot be made: a file of that name is in the way: move it, or fix the token file's path in the configuration\n$`));
    // token in the same state: it logged in, so it hands the token over and says the file was not written.
    const before = sim.requests.length;
    const token = await runBundle(['--config', s.config, 'token']);
    expect(token.status).toBe(0);
    expect(sim.requests.length).toBe(before + 1);
    expect(token.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    expect(verifySimToken(token.stdout.trim(), sim.publicKey)).toMatchObject({ client_id: terminal.clientId });
    expect(token.stderr).toBe(
      `ereceipt-auth: warning: the folder ${blocker} of the token file cannot be made: a file of that name is in the way: move it, or fix the token file's path in the configuration; the token is printed but not kept, so the next call logs in again\n`,
    );
  });

  needs('tmpfs mount')('73: a read-only file system is named as such (EROFS), not as a missing folder', async () => {
    const s = await provisioned();
    const readOnly = join(s.dir, 'ro');
    mkdirSync(readOnly);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=16k,mode=0700', 'tmpfs', readOnly]);
    try {
      const tokenFile = join(readOnly, 'run', 'token.json');
      writeFileSync(s.config, JSON.stringify({ ...JSON.parse(readFileSync(s.config, 'utf8')), tokenFile }));
      await fails(
        ['--config', s.config, 'boot'],
        73,
        new RegExp(`^ereceipt-auth: error: cannot write the token file ${tokenFile} \\(EROFS\\): check that its folder exists, is writable and the disk is not full\n$`),
      );
    } finally {
      execFileSync('umount', [readOnly]);
    }
  });

  it('74: the credentials file cannot be read', async () => {
    const s = setup();
    mkdirSync(s.credentialsFile, { recursive: true });
    await fails(['--config', s.config, 'boot'], 74, /credentials file .* is not a regular file/);
  });

  it('75: the identity service fails or cannot be reached', async () => {
    const s = await provisioned();
    sim.injectFaults({ kind: 'status', status: 503, retryAfter: '120' });
    await fails(['--config', s.config, 'boot', '--wait', '5'], 75, /^ereceipt-auth: error: identity service is busy \(HTTP 503, asks to wait 120 s\): try again later\n$/);
    sim.injectFaults({ kind: 'status', status: 429, retryAfter: '3600' });
    await fails(['--config', s.config, 'token'], 75, /identity service is busy \(HTTP 429, asks to wait 3600 s\)/);

    const closed = await closedPort();
    writeFileSync(s.config, JSON.stringify({ ...JSON.parse(readFileSync(s.config, 'utf8')), identityUrl: `http://127.0.0.1:${closed}` }));
    await fails(['--config', s.config, 'boot', '--wait', '0'], 75, /identity service at 127\.0\.0\.1:\d+ is unreachable \(ECONNREFUSED\): check the network; try again later/);
    const status = await runBundle(['--config', s.config, 'status']);
    expect(status.stdout).toMatch(/last error: .*ECONNREFUSED/);
    // No token, because the service failed: monitoring reads 75.
    expect(status.status).toBe(75);
    expect(status.stderr).toBe('ereceipt-auth: error: there is no token, the identity service could not be reached or failed (see last error): run "ereceipt-auth boot", or start the service\n');
  });

  it('75: a timeout bounds the request', async () => {
    const s = await provisioned({ timeoutSeconds: 1 });
    sim.injectFaults({ kind: 'delay', ms: 3000 });
    const run = await fails(['--config', s.config, 'boot', '--wait', '0'], 75, /did not answer within 1 s/);
    expect(run.ms).toBeLessThan(2900);
  });

  it('77: credentials rejected, never retried, old credentials kept', async () => {
    const s = await provisioned();
    const before = readFileSync(s.credentialsFile);
    const wrong = { ...terminal, presharedKey: 'a-mistyped-psk-value-0001' };
    await fails(['--config', s.config, 'provision', '--stdin'], 77, /^ereceipt-auth: error: presharedkey rejected by the identity service \(invalid_presharedkey\): re-run provisioning; nothing was saved\n$/, input(wrong));
    expect(readFileSync(s.credentialsFile).equals(before)).toBe(true);

    sim.updateTerminal(terminal.clientId, { presharedKey: 'rotated-on-the-portal-0001' });
    try {
      const count = sim.tokenRequestCount();
      await fails(['--config', s.config, 'boot', '--wait', '30'], 77, /^ereceipt-auth: error: presharedkey rejected by the identity service \(invalid_presharedkey\): re-run provisioning\n$/);
      expect(sim.tokenRequestCount()).toBe(count + 1);
    } finally {
      sim.updateTerminal(terminal.clientId, { presharedKey: terminal.presharedKey });
    }
  });

  it('78: configuration missing or invalid, not provisioned, credentials unreadable', async () => {
    const s = setup();
    await fails(['--config', join(s.dir, 'none.json'), 'boot'], 78, /configuration file .*none\.json does not exist: create it or pass --config FILE/);
    await fails(['boot'], 78, /configuration file \/nonexistent\/c\.json does not exist/, undefined, { ERECEIPT_AUTH_CONFIG: '/nonexistent/c.json' });
    writeFileSync(join(s.dir, 'bad.json'), JSON.stringify({ identityUrl: sim.url, hal: { driver: 'sim', serial: 'x', modelFramework: '1' }, tokenFle: '/x' }));
    await fails(['--config', join(s.dir, 'bad.json'), 'boot'], 78, /has unknown key tokenFle: fix the file/);
    await fails(['--config', s.config, 'boot'], 78, /not provisioned: there is no credentials file .*: run "ereceipt-auth provision"/);
    await fails(['--config', s.config, 'token'], 78, /^ereceipt-auth: error: not provisioned: there is no credentials file .*: run "ereceipt-auth provision"/);

    const p = await provisioned();
    chmodSync(p.credentialsFile, 0o644);
    await fails(['--config', p.config, 'boot'], 78, /is open to other users \(mode 644\)/);
    chmodSync(p.credentialsFile, 0o600);

    const bytes = readFileSync(p.credentialsFile);
    bytes[bytes.length - 5] = (bytes[bytes.length - 5] as number) ^ 0x40;
    writeFileSync(p.credentialsFile, bytes);
    await fails(['--config', p.config, 'boot'], 78, /cannot be opened on this terminal \(made on another device, altered, or damaged\): re-run provisioning/);
  });

  it('78: the credentials file copied to another terminal', async () => {
    const original = await provisioned();
    const other = setup({}, { serial: 'POS-TEST-9999' });
    mkdirSync(join(other.dir, 'lib'));
    writeFileSync(other.credentialsFile, readFileSync(original.credentialsFile), { mode: 0o600 });
    await fails(['--config', other.config, 'boot'], 78, /cannot be opened on this terminal/);
    await fails(['--config', other.config, 'token'], 78, /cannot be opened on this terminal/);
    const status = await runBundle(['--config', other.config, 'status']);
    expect(status.stdout).toMatch(/credentials: +UNREADABLE/);
    expect(status.status).toBe(78);
    expect(status.stderr).toBe('ereceipt-auth: error: there is no token: the credentials file cannot be used here: re-run provisioning\n');
  });

  it('status: 78 before provisioning, 77 once the credentials are rejected, 0 only with a valid token', async () => {
    const s = setup();
    const fresh = await runBundle(['--config', s.config, 'status', '--json']);
    expect(fresh.status).toBe(78);
    expect((JSON.parse(fresh.stdout) as { credentials: { state: string } }).credentials.state).toBe('absent');
    expect(fresh.stderr).toBe('ereceipt-auth: error: there is no token: the terminal is not provisioned: run "ereceipt-auth provision"\n');

    const wrong = { ...terminal, presharedKey: 'a-mistyped-psk-value-0001' };
    expect((await runBundle(['--config', s.config, 'provision', '--stdin', '--offline'], { input: input(wrong) })).status).toBe(0);
    expect((await runBundle(['--config', s.config, 'boot'])).status).toBe(77);
    const rejected = await runBundle(['--config', s.config, 'status']);
    expect(rejected.status).toBe(77);
    expect(rejected.stderr).toMatch(/^ereceipt-auth: error: there is no token: the identity service rejected the credentials \(see last error\): re-run provisioning\n$/);

    expect((await runBundle(['--config', s.config, 'provision', '--stdin'], { input: input(terminal) })).status).toBe(0);
    noteTokens(s);
    expect(await runBundle(['--config', s.config, 'status'])).toMatchObject({ status: 0, stderr: '' });
  });
});

// Last: the whole transcript of this file.
afterAll(() => {
  const secrets = [terminal.clientSecret, terminal.presharedKey, 'rotated-on-the-portal-0001', 'a-mistyped-psk-value-0001', ...tokensSeen];
  expect(tokensSeen.size).toBeGreaterThan(3);
  const stateFiles = setups.map((s) => join(s.dir, 'run', 'state.json')).filter((f) => existsSync(f));
  expect(stateFiles.length).toBeGreaterThan(5);
  for (const file of stateFiles) {
    const text = readFileSync(file, 'utf8');
    for (const secret of secrets) expect(text).not.toContain(secret);
  }
  for (const entry of transcript) {
    const stdoutMayHoldToken = entry.args.includes('token');
    for (const secret of secrets) {
      expect(entry.stderr).not.toContain(secret);
      if (!(stdoutMayHoldToken && tokensSeen.has(secret))) expect(entry.stdout).not.toContain(secret);
    }
  }
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// Declared after the transcript check, so that the temp dirs (and their state files) outlive it.
const tempDir = useTempDir();
