// `run` in this process, with a context the test controls: a reload the test holds
// open while SIGHUP and SIGTERM land, and signals that came while the program
// started. Signals are emitted to run's own handlers (process.emit), not sent by the
// kernel, so the test runner is never at risk.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startIdentitySim, type IdentitySim } from './identity-sim';
import { systemClocks } from '../src/clock';
import type { CommandContext } from '../src/commands/context';
import { run } from '../src/commands/run';
import { parseConfig, type Config } from '../src/config';
import { writeCredentials } from '../src/credentials';
import { commandOf, holdSignals } from '../src/held-signals';
import { createLogger } from '../src/log';
import { Secret } from '../src/secret';
import { createSimHal } from '../hal/sim';
import { createTransport } from '../src/transport';
import { useTempDir } from './helpers/temp-dir';

const tempDir = useTempDir();
const terminal = {
  serial: 'POS-SIG-0001',
  modelFramework: '1',
  clientId: 'sig-client-0001',
  clientSecret: 'sig-secret-0123456789',
  presharedKey: 'sig-psk-0123456789',
};
let sim: IdentitySim;
beforeAll(async () => {
  sim = await startIdentitySim({ terminals: [terminal] });
});
afterAll(() => sim.close());

/** fs.watch handles alive in this process: a watcher left open after a stop would keep `run` alive. */
const watchers = () => (process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo().filter((name) => name === 'FSEventWrap').length;

async function context(reload: () => Promise<Pick<CommandContext, 'config' | 'hal' | 'transport'>>, lines: string[], extra: Partial<CommandContext> = {}): Promise<CommandContext> {
  const dir = tempDir();
  const config: Config = parseConfig(
    {
      identityUrl: sim.url,
      hal: { driver: 'sim', serial: terminal.serial, modelFramework: terminal.modelFramework },
      osVersion: 'Debian 12',
      credentialsFile: join(dir, 'lib', 'credentials'),
      tokenFile: join(dir, 'run', 'token.json'),
      timeoutSeconds: 5,
    },
    join(dir, 'config.json'),
  );
  await writeCredentials(config.credentialsFile, { clientId: terminal.clientId, clientSecret: new Secret(terminal.clientSecret), presharedKey: new Secret(terminal.presharedKey) }, { serial: terminal.serial });
  const hal = createSimHal({ serial: terminal.serial, modelFramework: terminal.modelFramework });
  const write = (text: string) => void lines.push(text);
  return {
    config,
    hal: async () => hal,
    transport: createTransport(config),
    clocks: systemClocks,
    log: createLogger({ write }),
    stdout: write,
    stderr: write,
    stdin: () => process.stdin,
    reload,
    ...extra,
  };
}

/** run's promise, or a failure if it has not ended within `ms`: a hang must fail the test, not stall the suite. */
function ended(running: Promise<void>, ms = 3000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(new Error(`run did not end within ${ms} ms`)), ms)));
  return Promise.race([running, late]).finally(() => clearTimeout(timer));
}

async function waitFor(what: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!what()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

it('SIGHUP, then SIGTERM while that reload is held open: the stop wins, nothing outlives it', async () => {
  const lines: string[] = [];
  let release: (() => void) | undefined;
  let reloads = 0;
  const ctx: CommandContext = await context(
    () =>
      new Promise((resolve) => {
        reloads += 1;
        release = () => resolve({ config: ctx.config, hal: ctx.hal, transport: ctx.transport });
      }),
    lines,
  );
  const before = watchers();
  const running = run(ctx, []);
  await waitFor(() => existsSync(ctx.config.tokenFile) && lines.some((line) => line.includes('token renewed')), 5000);
  expect(watchers()).toBe(before + 1);

  process.emit('SIGHUP', 'SIGHUP');
  await waitFor(() => reloads === 1, 1000);
  process.emit('SIGTERM', 'SIGTERM');
  // The reload comes back only after the stop began.
  await new Promise((resolve) => setTimeout(resolve, 50));
  (release as () => void)();
  const started = Date.now();
  await ended(running);
  expect(Date.now() - started).toBeLessThan(2000);
  // A closed watcher's handle goes in the close phase of the event loop's next turn.
  await new Promise((resolve) => setTimeout(resolve, 10));
  // No credentials watcher, no second manager: what the reload brought was never started.
  expect(watchers()).toBe(before);
  expect(lines.join('')).not.toMatch(/SIGHUP: terminal/);
  expect(lines[lines.length - 1]).toBe('<6>ereceipt-auth: SIGTERM: stopping\n');
  expect(process.listenerCount('SIGHUP')).toBe(0);
});

it('a new credentials file, then SIGHUP, then SIGTERM at once: it stops, with nothing left open', async () => {
  const lines: string[] = [];
  let ctx: CommandContext;
  const reload = async () => ({ config: ctx.config, hal: ctx.hal, transport: ctx.transport });
  ctx = await context(reload, lines);
  const before = watchers();
  const running = run(ctx, []);
  await waitFor(() => existsSync(ctx.config.tokenFile) && lines.some((line) => line.includes('token renewed')), 5000);
  // A technician provisions again: the folder watcher sees the new file and reloads.
  await writeCredentials(ctx.config.credentialsFile, { clientId: terminal.clientId, clientSecret: new Secret(terminal.clientSecret), presharedKey: new Secret(terminal.presharedKey) }, { serial: terminal.serial });
  process.emit('SIGHUP', 'SIGHUP');
  process.emit('SIGTERM', 'SIGTERM');
  const started = Date.now();
  await ended(running);
  expect(Date.now() - started).toBeLessThan(2000);
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(watchers()).toBe(before);
});

it('signals that came while the program started: a SIGHUP is not fatal, a SIGTERM stops it at once with 0', async () => {
  const held = holdSignals(['SIGTERM', 'SIGINT', 'SIGHUP']);
  // Kernel-delivered in a real start; emitted here, to the holder that main.ts installs first.
  process.emit('SIGHUP', 'SIGHUP');
  process.emit('SIGTERM', 'SIGTERM');
  const lines: string[] = [];
  const ctx = await context(async () => Promise.reject(new Error('no reload expected')), lines, { heldSignals: held });
  const counting = sim.tokenRequestCount();
  const started = Date.now();
  await ended(run(ctx, []));
  expect(Date.now() - started).toBeLessThan(1000);
  expect(sim.tokenRequestCount() - counting).toBe(0);
  expect(lines).toEqual(['<6>ereceipt-auth: SIGHUP while starting: the configuration is being read now anyway\n', '<6>ereceipt-auth: SIGTERM: stopping\n']);
  expect(process.listenerCount('SIGTERM')).toBe(0);
});

it.each([
  [['run'], 'run'],
  [['--config', 'run', 'boot'], 'boot'],
  [['--config=/etc/x.json', 'run'], 'run'],
  [['--help'], undefined],
  [['status', 'run'], 'status'],
])('commandOf %j is %p', (argv, command) => {
  expect(commandOf(argv)).toBe(command);
});
