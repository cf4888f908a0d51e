// The README's "Three ways to get a token" examples, run as written (only the
// installed paths are pointed at this test's files): each must come out with the
// token the program wrote, and the token-file readers must refuse a token about to
// expire.
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startIdentitySim, type IdentitySim } from './identity-sim';
import { BUNDLE, runBundle } from './helpers/bundle';
import { needs } from './helpers/needs';
import { provisionedIn } from './helpers/provisioned';
import { useTempDir } from './helpers/temp-dir';

const README = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');
const DIST_INDEX = join(__dirname, '..', 'dist', 'index.js');
const tempDir = useTempDir();
const terminal = { serial: 'POS-README-01', modelFramework: '1', osVersion: 'Debian 12', clientId: 'readme-client-01', clientSecret: 'readme-secret-0123456789', presharedKey: 'readme-psk-0123456789' };

interface Example {
  way: number;
  lang: string;
  code: string;
}

/** The fenced blocks of the section, each with the number of the way it illustrates. */
function examples(): Example[] {
  const start = README.indexOf('### Three ways to get a token');
  const end = README.indexOf('### The token file', start);
  if (start < 0 || end < 0) throw new Error('the README has no "Three ways to get a token" section');
  const found: Example[] = [];
  let way = 0;
  const pattern = /\*\*(\d)\. |```(\w+)\n([\s\S]*?)```/g;
  for (const m of README.slice(start, end).matchAll(pattern)) {
    if (m[1]) way = Number(m[1]);
    else found.push({ way, lang: m[2] as string, code: m[3] as string });
  }
  return found;
}

const pick = (way: number, lang: string): string => {
  const example = examples().find((e) => e.way === way && e.lang === lang);
  if (!example) throw new Error(`the README has no ${lang} example for way ${way}`);
  return example.code;
};

let sim: IdentitySim;
let dir: string;
let config: string;
let tokenFile: string;
let env: NodeJS.ProcessEnv;
beforeAll(async () => {
  sim = await startIdentitySim({ terminals: [terminal] });
  ({ dir, config, tokenFile } = await provisionedIn(tempDir(), sim.url, terminal));
  // `ereceipt-auth` on the PATH, as the package installs it, with this test's configuration.
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'ereceipt-auth'), `#!/bin/sh\nexec "${process.execPath}" "${BUNDLE}" --config "${config}" "$@"\n`);
  chmodSync(join(bin, 'ereceipt-auth'), 0o755);
  env = { PATH: `${bin}:${process.env['PATH'] ?? ''}`, API_BASE: sim.url };
  writeFileSync(join(dir, 'receipts.json'), JSON.stringify({ receipts: [{ header: { uuid: 'readme-1' } }] }));
});
afterAll(() => sim.close());

/** The example with the installed paths pointed at this test's files. */
const localized = (code: string) =>
  code.replaceAll('/run/ereceipt-auth/token.json', tokenFile).replaceAll('/usr/lib/ereceipt-auth/index.js', DIST_INDEX).replaceAll('/etc/ereceipt-auth/config.json', config);

function run(command: string, args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: dir, env, timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ status: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const runners: Record<string, (code: string, print: string) => Promise<{ status: number; stdout: string; stderr: string }>> = {
  js: (code, print) => run(process.execPath, ['-e', `(async () => {\n${code}\n${print}\n})().catch((e) => { console.error(e.message); process.exit(1); });`]),
  python: (code, print) => run('python3', ['-c', `${code}\n${print}\n`]),
  sh: (code, print) => run('sh', ['-c', `${code}\n${print}\n`]),
};

async function bootFresh(): Promise<string> {
  const boot = await runBundle(['--config', config, 'boot']);
  expect(boot.status).toBe(0);
  return (JSON.parse(readFileSync(tokenFile, 'utf8')) as { access_token: string }).access_token;
}

function ageTokenFile(seconds: number): void {
  const file = JSON.parse(readFileSync(tokenFile, 'utf8')) as Record<string, unknown>;
  writeFileSync(tokenFile, JSON.stringify({ ...file, expires_at: new Date(Math.floor(Date.now() / 1000 + seconds) * 1000).toISOString() }));
}

/** Way 1: the file's token, and a refusal once it has under 10 s left. */
const readsTheFile = (lang: string, print: string) => async () => {
  const token = await bootFresh();
  const code = localized(pick(1, lang));
  const good = await runners[lang]!(code, print);
  expect(good).toMatchObject({ status: 0, stdout: `Bearer ${token}\n` });
  ageTokenFile(5);
  const late = await runners[lang]!(code, print);
  expect(late.status).not.toBe(0);
  expect(late.stdout).not.toContain(token);
  expect(late.stderr).toMatch(/no valid token/);
};

/** Way 2: the token `ereceipt-auth token` prints, the file's while it has 60 s left, else a new one. */
const runsTheCommand = (lang: string, print: string) => async () => {
  const token = await bootFresh();
  const code = localized(pick(2, lang));
  expect(await runners[lang]!(code, print)).toMatchObject({ status: 0, stdout: expect.stringContaining(`Bearer ${token}\n`) });
  ageTokenFile(30);
  const renewed = await runners[lang]!(code, print);
  expect(renewed.status).toBe(0);
  const now = (JSON.parse(readFileSync(tokenFile, 'utf8')) as { access_token: string }).access_token;
  expect(now).not.toBe(token);
  expect(renewed.stdout).toContain(`Bearer ${now}\n`);
};

describe('way 1: reading the token file', () => {
  it('js', readsTheFile('js', 'console.log(authorization);'));
  needs('python3')('python', readsTheFile('python', 'print(authorization)'));
  needs('jq')('sh', readsTheFile('sh', 'echo "Bearer $token"'));
});

describe('way 2: ereceipt-auth token', () => {
  it('js', runsTheCommand('js', 'console.log(authorization);'));
  needs('python3')('python', runsTheCommand('python', 'print(authorization)'));
  needs('curl')('sh: the token, and the receipts it posts with it are accepted', async () => {
    const before = sim.receipts.length;
    await runsTheCommand('sh', 'echo; echo "Bearer $token"')();
    expect(sim.receipts.slice(before).map((r) => r.status)).toEqual([202, 202]);
  });
});

describe('way 3: the in-process API', () => {
  it('js: the receipts are posted with a valid token and accepted', async () => {
    const code = localized(pick(3, 'js'));
    const before = sim.receipts.length;
    // As a CommonJS module, as written, then called.
    const script = join(dir, 'way3.js');
    writeFileSync(script, `const apiBaseUrl = ${JSON.stringify(sim.url)};\n${code}\nsubmit([{ header: { uuid: 'readme-3' } }]).then(async (res) => { console.log(res.status); await auth.close(); });\n`);
    const result = await run(process.execPath, [script]);
    expect(result).toMatchObject({ status: 0, stdout: '202\n' });
    expect(sim.receipts.slice(before).map((r) => r.status)).toEqual([202]);
  });
});

it('the section has an example of each way in each language it names, and no other', () => {
  expect(examples().map((e) => `${e.way} ${e.lang}`)).toEqual(['1 js', '1 python', '1 sh', '2 sh', '2 python', '2 js', '3 js']);
});
