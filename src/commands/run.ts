import { statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { EreceiptError } from '../errors';
import { createLogger } from '../log';
import { loginOnce } from '../login';
import { acquireRunLock, type RunLock } from '../run-lock';
import { createTokenManager, type ManagerState, type TokenManager } from '../token-manager';
import { createTokenSink } from '../token-sink';
import { describeArg } from './args';
import type { CommandContext } from './context';

/** How often the service looks for a wall-clock jump and for new credentials it was not told about. */
const CHECK_MS = 10_000;

/**
 * `run`: stay in the foreground for init or systemd, keep the token file valid.
 * Transient failures never end it; SIGTERM and SIGINT end it with 0; SIGHUP reloads
 * the configuration and the credentials, as does a new credentials file.
 */
export async function run(ctx: CommandContext, args: string[]): Promise<void> {
  if (args.length > 0) throw new EreceiptError('ERR_USAGE', `run does not take ${describeArg(args[0] as string)}: see --help`);
  const log = createLogger({ write: ctx.stderr, syslog: true });
  const { clocks } = ctx;
  const startedAt = new Date(clocks.now()).toISOString();
  let parts: Pick<CommandContext, 'config' | 'hal' | 'transport'> = { config: ctx.config, hal: ctx.hal, transport: ctx.transport };
  let manager: TokenManager | undefined;
  let watcher: FSWatcher | undefined;
  let credentialsStamp = '';

  // Signals first: a SIGTERM while starting must still end it with 0.
  let stopRequested = false;
  let wake: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (wake = resolve));
  const stop = (signal: string) => {
    log.info(`${signal}: stopping`);
    stopRequested = true;
    wake();
  };
  const onTerm = () => stop('SIGTERM');
  const onInt = () => stop('SIGINT');
  const onHup = () => void reload('SIGHUP');
  process.once('SIGTERM', onTerm);
  process.once('SIGINT', onInt);
  process.on('SIGHUP', onHup);
  // Handled from here on; those that came while the program started are acted on now.
  for (const signal of ctx.heldSignals?.release() ?? []) {
    if (signal === 'SIGHUP') log.info('SIGHUP while starting: the configuration is being read now anyway');
    else if (!stopRequested) stop(signal);
  }

  // The one sink every entry point writes through: the token file and the state file
  // in order, and a failed token-file write retried on its own schedule (the token is
  // held meanwhile, and written as soon as the disk lets it).
  const sink = createTokenSink({ tokenFile: () => parts.config.tokenFile, clocks, log, retryWrites: true });
  const recordService = (state: ManagerState, ended = false) => sink.noteService(state, { startedAt, ended });

  async function begin(reason: string): Promise<void> {
    const { config } = parts;
    const openHal = parts.hal;
    // A driver that cannot be opened yet is not the end of the service: each login opens it again.
    const described = await openHal().then(
      (hal) => hal.description,
      () => `${config.hal.driver} (not answering yet)`,
    );
    credentialsStamp = stamp(config.credentialsFile);
    // A stop that came while the driver opened wins: nothing is started after it.
    if (stopRequested) return;
    const created = createTokenManager({
      login: loginOnce(config, () => openHal(), parts.transport, clocks),
      clocks,
      log,
      keepAlive: true,
      clockCheckMs: CHECK_MS,
      onToken: async (held) => {
        const written = await sink.accept(held);
        const until = new Date(clocks.now() + (held.expiresAtMono - clocks.monotonic())).toISOString();
        log.info(written ? `token renewed; valid until ${until}` : `token renewed (valid until ${until}), but not yet in the token file: its write is being retried`);
      },
      onClockJump: (held) => sink.rewrite(held),
      onState: (state) => recordService(state),
    });
    const previous = manager;
    manager = created;
    await previous?.close();
    log.info(`${reason}: terminal ${described}, identity service ${config.identityUrl}`);
    created.start();
    watchCredentials();
  }

  // Reloads one at a time: two SIGHUPs, or a SIGHUP and a new credentials file, must
  // not leave two managers renewing side by side.
  let reloading = Promise.resolve();
  function reload(reason: string): Promise<void> {
    reloading = reloading.then(async () => {
      if (stopRequested) return;
      try {
        const next = await ctx.reload();
        await next.hal(); // opened before anything is let go: a new driver that fails changes nothing
        // A stop that came meanwhile wins: nothing new is started after it.
        if (stopRequested) return;
        parts = next;
        await begin(reason);
      } catch (error) {
        // A broken configuration must not stop a service that has a working one.
        log.error(`${reason}, but the reload failed, so the running configuration stays: ${(error as Error).message}`);
      }
    });
    return reloading;
  }

  function watchCredentials(): void {
    watcher?.close();
    const file = parts.config.credentialsFile;
    try {
      // The folder, not the file: provisioning replaces the file by a rename.
      watcher = watch(dirname(file), (_event, name) => {
        if (name === basename(file)) void checkCredentials();
      });
      watcher.on('error', () => watcher?.close());
    } catch {
      watcher = undefined;
    }
  }

  async function checkCredentials(): Promise<void> {
    const now = stamp(parts.config.credentialsFile);
    if (now !== credentialsStamp && now !== '') {
      credentialsStamp = now;
      await reload('new credentials');
    }
  }

  let lock: RunLock | undefined;
  try {
    // One service per token file: a second one would log in and write beside the first.
    lock = await acquireRunLock(parts.config.tokenFile);
    // A driver slow to open (a co-processor that does not answer) must not hold up a stop.
    if (!stopRequested) await Promise.race([begin('started'), stopped]);
    const poll = setInterval(() => void checkCredentials(), CHECK_MS);
    await stopped;
    clearInterval(poll);
    // A reload in flight may end first (it starts nothing once the stop has begun),
    // but a slow one is not waited for: a stop takes at most about a second more.
    await Promise.race([reloading, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
    watcher?.close();
    const last = manager?.state();
    await manager?.close();
    if (last) await recordService(last, true);
    await sink.close();
  } finally {
    await lock?.release();
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    process.off('SIGHUP', onHup);
  }
}

/** Identifies a version of the credentials file without reading it. */
function stamp(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return '';
  }
}
