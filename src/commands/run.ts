import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { EreceiptError } from '../errors';
import { createLogger } from '../log';
import { hasB2c, NO_B2C_WARNING } from '../jwt';
import { loginOnce } from '../login';
import { acquireRunLock, type RunLock } from '../run-lock';
import { redact } from '../secret';
import { recordState, tokenFileFromHeld, writeTokenFile, type ServiceState } from '../token-file';
import { createTokenManager, type HeldToken, type ManagerState, type TokenManager } from '../token-manager';
import { describeArg } from './args';
import type { CommandContext } from './context';

/** How often the service looks for a wall-clock jump and for new credentials it was not told about. */
const CHECK_MS = 10_000;
/** A local clock further than this from the identity service's is worth a warning. */
const CLOCK_WARN_SECONDS = 300;

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
  let latest: HeldToken | undefined;
  /** Whether the last token said the taxpayer lacks B2C: warned on the change, not at every renewal. */
  let warnedNoB2c = false;

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

  // One writer for the token file and the state file, in order: a clock-jump rewrite
  // and a renewal never cross, and the token written is always the newest one.
  let writing = Promise.resolve();
  const serially = (task: () => Promise<void>) => {
    writing = writing.then(task).catch((error: unknown) => log.error((error as Error).message));
    return writing;
  };
  // A token file that cannot be written (a full tmpfs, a folder made read-only) is
  // tried again on its own schedule, not only at the next renewal an hour later:
  // the token is held meanwhile, and written as soon as the disk lets it.
  let writeFailures = 0;
  let writeRetry: ReturnType<typeof setTimeout> | undefined;
  const writeLatest = (tokenFile: string): Promise<boolean> => {
    let written = false;
    return serially(async () => {
      if (!latest) return;
      if (writeRetry) clearTimeout(writeRetry);
      writeRetry = undefined;
      try {
        await writeTokenFile(tokenFile, tokenFileFromHeld(latest, clocks.now(), clocks.monotonic()));
        written = true;
        if (writeFailures > 0) log.info(`the token file ${tokenFile} is written again, after ${writeFailures} failed ${writeFailures === 1 ? 'try' : 'tries'}`);
        writeFailures = 0;
      } catch (error) {
        writeFailures += 1;
        const delay = writeRetryDelay(writeFailures);
        if (reportTry(writeFailures)) log.error(`${(error as Error).message}; the token is held, try ${writeFailures}, next in ${delay / 1000} s`);
        if (!stopRequested) writeRetry = setTimeout(() => void writeLatest(parts.config.tokenFile), delay);
      }
    }).then(() => written);
  };
  const record = (change: ServiceState, clearError = false) => serially(() => recordState(parts.config.tokenFile, change, { error: clearError }));
  const recordService = (state: ManagerState, ended = false) =>
    record(
      {
        ...(state.lastError ? { last_error: { code: state.lastError.code, message: redact(state.lastError.message), at: new Date(state.lastError.at).toISOString() } } : {}),
        service: {
          pid: process.pid,
          started_at: startedAt,
          ...(ended ? { stopped_at: new Date(clocks.now()).toISOString() } : {}),
          ...(state.nextAttemptAt === undefined || ended ? {} : { next_attempt_at: new Date(state.nextAttemptAt).toISOString() }),
          rejected: state.rejected,
          requests: state.requests,
        },
      },
      !state.lastError,
    );

  async function begin(reason: string): Promise<void> {
    const { config } = parts;
    const openHal = parts.hal;
    // A driver that cannot be opened yet is not the end of the service: each login opens it again.
    const described = await openHal().then(
      (hal) => hal.description,
      () => `${config.hal.driver} (not answering yet)`,
    );
    credentialsStamp = await stamp(config.credentialsFile);
    // A stop that came while the driver opened wins: nothing is started after it.
    if (stopRequested) return;
    const created = createTokenManager({
      login: loginOnce(config, () => openHal(), parts.transport, clocks),
      clocks,
      log,
      keepAlive: true,
      clockCheckMs: CHECK_MS,
      onToken: async (held) => {
        latest = held;
        const written = await writeLatest(config.tokenFile);
        const noB2c = hasB2c(held.token.claims.taxpayerTags) === false;
        if (noB2c && !warnedNoB2c) log.warn(NO_B2C_WARNING);
        warnedNoB2c = noB2c;
        const offset = held.token.serverDate === undefined ? undefined : Math.round((held.token.serverDate - held.obtainedAt) / 1000);
        if (offset !== undefined && Math.abs(offset) > CLOCK_WARN_SECONDS) {
          log.warn(`the local clock is ${Math.abs(offset)} s ${offset > 0 ? 'behind' : 'ahead of'} the identity service's: check NTP`);
        }
        await record({ last_success_at: new Date(clocks.now()).toISOString(), ...(offset === undefined ? {} : { clock_offset_seconds: offset }) });
        const until = new Date(clocks.now() + (held.expiresAtMono - clocks.monotonic())).toISOString();
        log.info(written ? `token renewed; valid until ${until}` : `token renewed (valid until ${until}), but not yet in the token file: its write is being retried`);
      },
      onClockJump: async () => void (await writeLatest(config.tokenFile)),
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
    const now = await stamp(parts.config.credentialsFile);
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
    if (writeRetry) clearTimeout(writeRetry);
    // A reload in flight may end first (it starts nothing once the stop has begun),
    // but a slow one is not waited for: a stop takes at most about a second more.
    await Promise.race([reloading, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
    watcher?.close();
    const last = manager?.state();
    await manager?.close();
    if (last) await recordService(last, true);
    await writing;
  } finally {
    await lock?.release();
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    process.off('SIGHUP', onHup);
  }
}

/** Reports failed writes on tries 1, 2, 4, 8…, so a disk full for a day does not flood the log. */
const reportTry = (n: number) => (n & (n - 1)) === 0;

/** How long after failed write number `n` (1 for the first) to write again: 1, 2, 4, 8 s, then every 15 s. */
export function writeRetryDelay(n: number): number {
  return Math.min(15_000, 1000 * 2 ** Math.min(n - 1, 4));
}

/** Identifies a version of the credentials file without reading it. */
async function stamp(path: string): Promise<string> {
  const { stat } = await import('node:fs/promises');
  try {
    const s = await stat(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return '';
  }
}
