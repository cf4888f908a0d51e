import { constants, promises as fs, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { privateFolder } from './atomic-file';
import { EreceiptError, systemCode } from './errors';
import { isAlive } from './pid';

/** The `run` that holds the lock: its pid, and its start time as the kernel counts it. */
export interface LockHolder {
  pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks after boot); '' where there is no /proc. */
  startTime: string;
}

export function runLockPath(tokenFile: string): string {
  return join(dirname(tokenFile), 'run.pid');
}

/** When the process started, in clock ticks after boot: with the pid, it names one process for good. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) is in parentheses and may hold anything: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

function parse(text: string): LockHolder | undefined {
  const match = /^(\d{1,10}) (\d{0,20})\n?$/.exec(text);
  if (!match) return undefined;
  return { pid: Number(match[1]), startTime: match[2] as string };
}

/** A holder is live only if its pid runs and started when the lock says: a reused pid is someone else. */
function isLive(holder: LockHolder): boolean {
  if (!isAlive(holder.pid)) return false;
  const now = processStartTime(holder.pid);
  return now === undefined || holder.startTime === '' || now === holder.startTime;
}

async function readHolder(path: string): Promise<{ text: string; holder: LockHolder | undefined; since?: string } | undefined> {
  try {
    // O_NOFOLLOW | O_NONBLOCK: a link or a FIFO planted in its place is not read through.
    const handle = await fs.open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const stat = await handle.stat();
      if (!stat.isFile() || stat.size > 64) return { text: '', holder: undefined };
      const text = (await handle.readFile()).toString('latin1');
      return { text, holder: parse(text), since: stat.mtime.toISOString() };
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (systemCode(error) === 'ENOENT') return undefined;
    return { text: '', holder: undefined };
  }
}

/** The live `run` holding the lock beside this token file, and since when, if there is one (for `status`). */
export async function lockHolder(tokenFile: string): Promise<(LockHolder & { since: string }) | undefined> {
  const found = await readHolder(runLockPath(tokenFile));
  return found?.holder && isLive(found.holder) ? { ...found.holder, since: found.since as string } : undefined;
}

export interface RunLock {
  path: string;
  /** Removes the lock if it is still this process's own. */
  release(): Promise<void>;
}

/**
 * Takes the lock of the resident service: a pid file beside the token file, created
 * exclusively. One left by a process that died (kill -9, a power cut) is stale by
 * its pid, or by its start time when the pid was reused, and is taken over. A live
 * holder makes this a failure (75) that names it: two services side by side would
 * both log in and both write.
 */
export async function acquireRunLock(tokenFile: string): Promise<RunLock> {
  const path = runLockPath(tokenFile);
  await privateFolder(dirname(path), 'run lock');
  const own = `${process.pid} ${processStartTime(process.pid) ?? ''}\n`;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const handle = await fs.open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        await handle.writeFile(own);
      } finally {
        await handle.close();
      }
      return {
        path,
        async release() {
          const found = await readHolder(path);
          if (found?.text === own) await fs.rm(path, { force: true }).catch(() => {});
        },
      };
    } catch (error) {
      if (systemCode(error) !== 'EEXIST') {
        throw new EreceiptError('ERR_FILE_WRITE', `cannot create the run lock ${path} (${systemCode(error) ?? 'error'}): check that the token folder is writable`, { cause: error });
      }
    }
    const found = await readHolder(path);
    if (found === undefined) continue; // gone meanwhile: try again
    if (found.holder && isLive(found.holder)) {
      throw new EreceiptError(
        'ERR_SERVICE_UNAVAILABLE',
        `ereceipt-auth run is already running as pid ${found.holder.pid} (lock ${path}): stop it first; "ereceipt-auth status" shows it`,
      );
    }
    await takeStale(path, found.text);
  }
  throw new EreceiptError('ERR_SERVICE_UNAVAILABLE', `the run lock ${path} keeps changing: another ereceipt-auth run is starting; try again`);
}

/**
 * Removes a stale lock without ever removing a fresh one that another starting
 * `run` has just made: it is moved aside first, and put back if it was not the
 * stale one after all.
 */
async function takeStale(path: string, staleText: string): Promise<void> {
  const aside = `${path}.${process.pid}.stale`;
  try {
    await fs.rename(path, aside);
  } catch {
    return;
  }
  const moved = await readHolder(aside);
  if (moved?.text !== staleText) await fs.link(aside, path).catch(() => {});
  await fs.rm(aside, { force: true }).catch(() => {});
}
