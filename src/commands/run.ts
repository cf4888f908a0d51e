import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { EreceiptError } from '../errors';
import { createLogger } from '../log';
import { loginOnce } from '../login';
import { recordState, tokenFileFromHeld, writeTokenFile } from '../token-file';
import { createTokenManager, type ManagerState, type TokenManager } from '../token-manager';
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
  let parts = { config: ctx.config, hal: ctx.hal, transport: ctx.transport };
  let manager: TokenManager | undefined;
  let watcher: FSWatcher | undefined;
  let credentialsStamp = '';

  const recordService = (state: ManagerState, stopped = false) =>
    recordState(parts.config.tokenFile, {
      ...(state.lastError ? { last_error: { code: state.lastError.code, message: state.lastError.message, at: new Date(state.lastError.at).toISOString() } } : {}),
      service: {
        pid: process.pid,
        started_at: startedAt,
        ...(stopped ? { stopped_at: new Date(clocks.now()).toISOString() } : {}),
        ...(state.nextAttemptAt === undefined || stopped ? {} : { next_attempt_at: new Date(state.nextAttemptAt).toISOString() }),
        rejected: state.rejected,
        requests: state.requests,
      },
    }, { error: !state.lastError });

  async function begin(reason: string): Promise<void> {
    const hal = await parts.hal();
    const { config } = parts;
    credentialsStamp = await stamp(config.credentialsFile);
    manager = createTokenManager({
      login: loginOnce(config, hal, parts.transport, clocks),
      clocks,
      log,
      keepAlive: true,
      clockCheckMs: CHECK_MS,
      onToken: async (held) => {
        const file = tokenFileFromHeld(held, clocks.now(), clocks.monotonic());
        await writeTokenFile(config.tokenFile, file);
        const offset = held.token.serverDate === undefined ? undefined : Math.round((held.token.serverDate - held.obtainedAt) / 1000);
        if (offset !== undefined && Math.abs(offset) > CLOCK_WARN_SECONDS) {
          log.warn(`the local clock is ${Math.abs(offset)} s ${offset > 0 ? 'behind' : 'ahead of'} the identity service's: check NTP`);
        }
        await recordState(config.tokenFile, { last_success_at: new Date(clocks.now()).toISOString(), ...(offset === undefined ? {} : { clock_offset_seconds: offset }) });
        log.info(`token renewed; valid until ${file.expires_at}`);
      },
      onState: (state) => recordService(state),
    });
    log.info(`${reason}: terminal ${hal.description}, identity service ${config.identityUrl}`);
    manager.start();
    watchCredentials();
  }

  async function reload(reason: string): Promise<void> {
    try {
      const next = await ctx.reload();
      await manager?.close();
      parts = next;
      await begin(reason);
    } catch (error) {
      // A broken configuration must not stop a service that has a working one.
      log.error(`${reason}, but the reload failed, so the running configuration stays: ${(error as Error).message}`);
    }
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

  let checking = false;
  async function checkCredentials(): Promise<void> {
    if (checking) return;
    checking = true;
    try {
      const now = await stamp(parts.config.credentialsFile);
      if (now !== credentialsStamp && now !== '') {
        credentialsStamp = now;
        await reload('new credentials');
      }
    } finally {
      checking = false;
    }
  }

  await begin('started');
  const poll = setInterval(() => void checkCredentials(), CHECK_MS);

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info(`${signal}: stopping`);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => void reload('SIGHUP'));
  });

  clearInterval(poll);
  watcher?.close();
  const last = manager?.state();
  await manager?.close();
  if (last) await recordService(last, true);
  process.removeAllListeners('SIGHUP');
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
