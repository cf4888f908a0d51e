// The built bundle with the serial HAL through serialport's real native binding
// (loaded from dist/prebuilds/) on a real pseudo-terminal, a simulated co-processor
// at the other end, and the identity-service simulator over loopback HTTP.
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LinuxBinding } from '@serialport/bindings-cpp/dist/linux';
import { startIdentitySim, type IdentitySim } from './identity-sim';
import { BUNDLE, runBundle } from './helpers/bundle';
import { startCoprocessor, type Coprocessor } from './helpers/coprocessor';
import { needs } from './helpers/needs';
import { useTempDir } from './helpers/temp-dir';

const tempDir = useTempDir();
/** The simulated co-processor is a python3 script on a pseudo-terminal. */
const withCoprocessor = needs('python3');
const terminal = {
  serial: 'POS-PTY-0001',
  modelFramework: '4',
  osVersion: 'Debian 12',
  clientId: 'pty-client-0001',
  clientSecret: 'pty-secret-0123456789',
  presharedKey: 'pty-psk-0123456789',
};
let sim: IdentitySim;
const running: Coprocessor[] = [];

beforeAll(async () => {
  sim = await startIdentitySim({ terminals: [terminal] });
});
afterAll(async () => {
  for (const c of running) c.stop();
  await sim.close();
});

async function coprocessor(args: string[] = []): Promise<Coprocessor> {
  const c = await startCoprocessor(args);
  running.push(c);
  return c;
}

function config(hal: Record<string, unknown>, dir = tempDir()): string {
  const file = join(dir, 'config.json');
  writeFileSync(
    file,
    JSON.stringify({ identityUrl: sim.url, hal: { driver: 'serial', ...hal }, osVersion: 'Debian 12', credentialsFile: join(dir, 'credentials'), tokenFile: join(dir, 'run', 'token.json') }),
  );
  return file;
}

const input = `client_id=${terminal.clientId}\nclient_secret=${terminal.clientSecret}\npresharedkey=${terminal.presharedKey}\n`;

withCoprocessor('provisions and boots with the identity read over the UART', async () => {
  const c = await coprocessor(['--banner', '--echo']);
  const file = config({ path: c.path });
  expect(await runBundle(['--config', file, 'provision', '--stdin'], { input })).toMatchObject({ status: 0, stdout: expect.stringContaining('terminal POS-PTY-0001') });
  const boot = await runBundle(['--config', file, 'boot']);
  expect(boot).toMatchObject({ status: 0, stderr: expect.stringMatching(/authenticated terminal POS-PTY-0001/) });
  expect(sim.requests[sim.requests.length - 1]?.headers).toMatchObject({ posserial: 'POS-PTY-0001', posmodelframework: '4' });
});

withCoprocessor('reads unquoted LF answers arriving a byte at a time, and shows the exchange', async () => {
  const c = await coprocessor(['--mode', 'bare', '--serial', 'POS-PTY-0002', '--model', '7']);
  const run = await runBundle(['--config', config({ path: c.path }), 'status', '--json', '--trace']);
  expect(run.status).toBe(78); // the report is whole; the status says there is no token (not provisioned)
  const report = JSON.parse(run.stdout) as { device: Record<string, string>; halTrace: string[] };
  expect(report.device).toMatchObject({ driver: `serial ${c.path} at 115200 baud`, serial: 'POS-PTY-0002', modelFramework: '7' });
  expect(report.halTrace).toEqual(['> AT+SN?', '< +SN: POS-PTY-0002', '< OK', '> AT+MODEL?', '< +MODEL: 7', '< OK']);
});

withCoprocessor('retries a silent first command', async () => {
  const c = await coprocessor(['--mode', 'flaky']);
  const run = await runBundle(['--config', config({ path: c.path, timeoutMs: 300 }), 'status', '--json']);
  expect((JSON.parse(run.stdout) as { device: { serial: string } }).device.serial).toBe('POS-PTY-0001');
});

withCoprocessor.each([
  ['error', /gave no usable answer to AT\+SN\? after 2 tries \(last: ERROR\)/],
  ['cme', /\(last: \+CME ERROR: 10\)/],
  ['garbage', /\(last: no answer within 200 ms\)/],
  ['silent', /\(last: no answer within 200 ms\)/],
])('%s answers are exit 65, bounded in time', async (mode, message) => {
  const c = await coprocessor(['--mode', mode]);
  const run = await runBundle(['--config', config({ path: c.path, timeoutMs: 200, tries: 2 }), 'boot']);
  expect(run.status).toBe(65);
  expect(run.stderr).toMatch(message);
  expect(run.ms).toBeLessThan(2500);
});

it('no device at the path is exit 69', async () => {
  // --wait 0: one try (a device that appears late at boot is waited for within --wait).
  const run = await runBundle(['--config', config({ path: '/dev/ttyNOSUCH9' }), 'boot', '--wait', '0']);
  expect(run).toMatchObject({ status: 69, stderr: 'ereceipt-auth: error: there is no serial device /dev/ttyNOSUCH9: check hal.path\n' });
});

withCoprocessor('a port held by another process is exit 69, and the holder keeps it', async () => {
  const c = await coprocessor();
  const holder = await LinuxBinding.open({ path: c.path, baudRate: 115200, lock: true });
  try {
    const run = await runBundle(['--config', config({ path: c.path }), 'boot', '--wait', '0']);
    expect(run).toMatchObject({ status: 69, stderr: `ereceipt-auth: error: serial device ${c.path} is in use by another process: stop it, or wait for it to finish\n` });
    expect(holder.isOpen).toBe(true);
    // boot waits for a busy UART within --wait, as run does: the holder lets go after a second.
    const waiting = runBundle(['--config', config({ path: c.path }), 'boot', '--wait', '10']);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(holder.isOpen).toBe(true);
    await holder.close();
    const waited = await waiting;
    // The identity was read; what stops it now is the missing provisioning.
    expect(waited.status).toBe(78);
    expect(waited.stderr).toMatch(new RegExp(`^ereceipt-auth: warning: serial device ${c.path} is in use by another process; retrying in [1-9]\\d* s\n`));
    expect(waited.stderr).toMatch(/\nereceipt-auth: error: not provisioned: there is no credentials file .*\n$/);
  } finally {
    if (holder.isOpen) await holder.close();
  }
  // The port opens again once the holder is gone (that the driver itself closes on
  // every path is tested in serial.test.ts; here each run is a process of its own).
  const after = await runBundle(['--config', config({ path: c.path }), 'status', '--json']);
  expect((JSON.parse(after.stdout) as { device: { serial?: string; error?: string } }).device).toEqual(expect.objectContaining({ serial: 'POS-PTY-0001' }));
  expect(after.status).toBe(78); // read fine; not provisioned
});

it('the bundle alone (no node_modules) runs the sim HAL, and explains what the serial HAL lacks', async () => {
  const dir = tempDir();
  const lone = join(dir, 'ereceipt-auth.js');
  copyFileSync(BUNDLE, lone);
  const run = (args: string[], stdin?: string) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const { spawn } = require('node:child_process') as typeof import('node:child_process');
      const child = spawn(process.execPath, [lone, ...args], { cwd: dir, env: { PATH: process.env['PATH'] } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('close', (status) => resolve({ status, stdout, stderr }));
      child.stdin.end(stdin ?? '');
    });
  const simDir = join(dir, 'sim');
  const simConfig = join(dir, 'sim.json');
  writeFileSync(
    simConfig,
    JSON.stringify({ identityUrl: sim.url, hal: { driver: 'sim', serial: terminal.serial, modelFramework: '4' }, osVersion: 'Debian 12', credentialsFile: join(simDir, 'c'), tokenFile: join(simDir, 't.json') }),
  );
  expect((await run(['--config', simConfig, 'provision', '--stdin'], input)).status).toBe(0);
  expect((await run(['--config', simConfig, 'boot'])).status).toBe(0);
  const serialConfig = config({ path: '/dev/ttyS1' }, dir);
  const serial = await run(['--config', serialConfig, 'boot']);
  expect(serial.status).toBe(69);
  expect(serial.stderr).toMatch(/the serial driver cannot be loaded \(Cannot find module '.*serial-driver\.js'\): copy serial-driver\.js and the prebuilds folder beside ereceipt-auth\.js\n$/);
  copyFileSync(join(BUNDLE, '..', 'serial-driver.js'), join(dir, 'serial-driver.js'));
  const native = await run(['--config', serialConfig, 'boot']);
  expect(native.status).toBe(69);
  expect(native.stderr).toMatch(/the serial driver cannot be loaded \(.*prebuilds\/linux-\w+\/node\.napi\.\w+\.node is missing\): copy serial-driver\.js and the prebuilds folder/);
});
