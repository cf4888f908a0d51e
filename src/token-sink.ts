import type { Clocks } from './clock';
import { hasB2c, NO_B2C_WARNING } from './jwt';
import type { Logger } from './log';
import { redact } from './secret';
import { clockOffsetAt, type HeldToken, type ManagerState } from './token-manager';
import { recordState, tokenFileFromHeld, writeTokenFile, type ServiceState, type TokenFile } from './token-file';

/** A local clock further than this from the identity service's is worth a warning. */
const CLOCK_WARN_SECONDS = 300;

/**
 * Where every entry point puts a token it has been given: the token file and the
 * state file, written one at a time and in order (a clock-jump rewrite and a
 * renewal never cross, and the file always ends with the newest token).
 */
export interface TokenSink {
  /**
   * Takes a new token: writes the token file, notes the success, warns once when the
   * taxpayer lacks B2C or the local clock is far off. Resolves with the file written;
   * a write that fails rejects (one-shot), or is retried on its own schedule and
   * resolves with undefined meanwhile (`retryWrites`): the token is never dropped.
   */
  accept(held: HeldToken): Promise<TokenFile | undefined>;
  /**
   * Writes the token again after a wall-clock jump, as the manager now holds it (its
   * expires_at redone; after a long forward jump, its expiry kept and its clock offset dropped).
   */
  rewrite(held: HeldToken): Promise<void>;
  /** Notes a failure for `status`. */
  noteFailure(error: unknown): Promise<void>;
  /** Notes what the resident service is doing, for `status`. */
  noteService(state: ManagerState, service: { startedAt: string; ended?: boolean }): Promise<void>;
  /** Stops the write retry and waits for what is being written. */
  close(): Promise<void>;
}

export interface TokenSinkOptions {
  /** The token file's path, asked at each write: a reload may change it. */
  tokenFile: () => string;
  clocks: Clocks;
  log: Logger;
  /** Retry a failed token-file write on its own schedule (the resident service). */
  retryWrites?: boolean;
}

export function createTokenSink(options: TokenSinkOptions): TokenSink {
  const { clocks, log } = options;
  let latest: HeldToken | undefined;
  let closed = false;
  /** Whether the last token said the taxpayer lacks B2C: warned on the change, not at every renewal. */
  let warnedNoB2c = false;
  let writing: Promise<unknown> = Promise.resolve();
  /** Runs `task` after every write before it; its failure is its caller's, never the queue's. */
  const serially = <T>(task: () => Promise<T>): Promise<T> => {
    const result = writing.then(task);
    writing = result.catch(() => {});
    return result;
  };
  const noted = (task: () => Promise<void>) => serially(task).catch((error: unknown) => log.error((error as Error).message));

  let writeFailures = 0;
  let writeRetry: ReturnType<typeof setTimeout> | undefined;
  const writeLatest = (): Promise<TokenFile | undefined> =>
    serially(async () => {
      if (writeRetry) clearTimeout(writeRetry);
      writeRetry = undefined;
      const held = latest;
      if (!held) return undefined;
      const tokenFile = options.tokenFile();
      const file = tokenFileFromHeld(held, clocks.now(), clocks.monotonic());
      try {
        await writeTokenFile(tokenFile, file);
      } catch (error) {
        if (!options.retryWrites) throw error;
        // A full tmpfs or a folder made read-only: the token is held meanwhile, and
        // written as soon as the disk lets it, not at the next renewal an hour later.
        writeFailures += 1;
        const delay = writeRetryDelay(writeFailures);
        if (reportTry(writeFailures)) log.error(`${(error as Error).message}; the token is held, try ${writeFailures}, next in ${delay / 1000} s`);
        if (!closed) writeRetry = setTimeout(() => void writeLatest(), delay);
        return undefined;
      }
      if (writeFailures > 0) log.info(`the token file ${tokenFile} is written again, after ${writeFailures} failed ${writeFailures === 1 ? 'try' : 'tries'}`);
      writeFailures = 0;
      return file;
    });

  return {
    async accept(held) {
      latest = held;
      // A one-shot write that fails still says what the token is (the caller may use it).
      const written = await writeLatest().then(
        (file) => ({ file }),
        (error: unknown) => ({ error }),
      );
      const noB2c = hasB2c(held.token.claims.taxpayerTags) === false;
      if (noB2c && !warnedNoB2c) log.warn(NO_B2C_WARNING);
      warnedNoB2c = noB2c;
      const offset = clockOffsetAt(held, clocks.now(), clocks.monotonic());
      if (offset && Math.abs(offset.seconds) > CLOCK_WARN_SECONDS) {
        log.warn(`the local clock is ${Math.round(Math.abs(offset.seconds))} s ${offset.seconds > 0 ? 'behind' : 'ahead of'} the identity service's: check NTP`);
      }
      if ('error' in written) throw written.error;
      // Without a usable Date this time, an older measurement is not kept beside a newer token.
      const success = {
        last_success_at: new Date(clocks.now()).toISOString(),
        clock_offset_seconds: offset?.seconds,
        clock_offset_precision_seconds: offset?.precisionSeconds,
      } as ServiceState;
      await noted(() => recordState(options.tokenFile(), success, { error: true }));
      return written.file;
    },
    async rewrite(held) {
      latest = held;
      await writeLatest().catch((error: unknown) => log.error((error as Error).message));
    },
    noteFailure(error) {
      const e = error as { code?: string; message?: string };
      const last_error = { code: e.code ?? 'ERR_INTERNAL', message: redact(e.message ?? String(error)), at: new Date(clocks.now()).toISOString() };
      return noted(() => recordState(options.tokenFile(), { last_error }));
    },
    noteService(state, { startedAt, ended = false }) {
      const change: ServiceState = {
        ...(state.lastError ? { last_error: { code: state.lastError.code, message: redact(state.lastError.message), at: new Date(state.lastError.at).toISOString() } } : {}),
        service: {
          pid: process.pid,
          started_at: startedAt,
          ...(ended ? { stopped_at: new Date(clocks.now()).toISOString() } : {}),
          ...(state.nextAttemptAt === undefined || ended ? {} : { next_attempt_at: new Date(state.nextAttemptAt).toISOString() }),
          rejected: state.rejected,
          requests: state.requests,
        },
      };
      return noted(() => recordState(options.tokenFile(), change, { error: !state.lastError }));
    },
    async close() {
      closed = true;
      if (writeRetry) clearTimeout(writeRetry);
      writeRetry = undefined;
      await writing;
    },
  };
}

/** Reports failed writes on tries 1, 2, 4, 8…, so a disk full for a day does not flood the log. */
const reportTry = (n: number) => (n & (n - 1)) === 0;

/** How long after failed write number `n` (1 for the first) to write again: 1, 2, 4, 8 s, then every 15 s. */
export function writeRetryDelay(n: number): number {
  return Math.min(15_000, 1000 * 2 ** Math.min(n - 1, 4));
}
