import { lstatSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
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
  const match = /^(\d{1,10}) (\d{0,20})$/.exec(text);
  if (!match) return undefined;
  return { pid: Number(match[1]), startTime: match[2] as string };
}

/** A holder is live only if its pid runs and started when the lock says: a reused pid is someone else. */
function isLive(holder: LockHolder): boolean {
  if (!isAlive(holder.pid)) return false;
  const now = processStartTime(holder.pid);
  return now === undefined || holder.startTime === '' || now === holder.startTime;
}

function readHolder(path: string): { text: string; holder: LockHolder | undefined; since?: string } | undefined {
  try {
    // The lock is a symbolic link whose target is the text: it is never followed.
    const text = readlinkSync(path);
    const since = lstatSync(path).mtime.toISOString();
    return { text, holder: parse(text), since };
  } catch (error) {
    if (systemCode(error) === 'ENOENT') return undefined;
    // Not a link (a file or a folder planted there): no holder, so stale.
    return { text: '', holder: undefined };
  }
}

/** The live `run` holding the lock beside this token file, and since when, if there is one (for `status`). */
export async function lockHolder(tokenFile: string): Promise<(LockHolder & { since: string }) | undefined> {
  const found = readHolder(runLockPath(tokenFile));
  return found?.holder && isLive(found.holder) ? { ...found.holder, since: found.since as string } : undefined;
}

export interface RunLock {
  path: string;
  /** Removes the lock if it is still this process's own. */
  release(): Promise<void>;
}

/**
 * Takes the lock of the resident service: `run.pid` beside the token file. A live
 * holder makes this a failure (75) that names it: two services side by side would
 * both log in and both write.
 */
export async function acquireRunLock(tokenFile: string): Promise<RunLock> {
  const path = runLockPath(tokenFile);
  const taken = tryLock(path, 'run lock');
  if ('release' in taken) return taken;
  throw new EreceiptError('ERR_SERVICE_UNAVAILABLE', `ereceipt-auth run is already running as pid ${taken.pid} (lock ${path}): stop it first; "ereceipt-auth status" shows it`);
}

/** The lock that serializes logins by separate `token` processes: `login.lock` beside the token file. */
export function loginLockPath(tokenFile: string): string {
  return join(dirname(tokenFile), 'login.lock');
}

/**
 * Takes a lock: a symbolic link to "<pid> <start time>" created exclusively. One
 * left by a process that died (kill -9, a power cut) is stale by its pid, or by its
 * start time when the pid was reused, and is taken over. Returns the lock, or the
 * live process that holds it.
 */
export function tryLock(path: string, what: string): RunLock | LockHolder {
  privateFolder(dirname(path), what);
  const own = `${process.pid} ${processStartTime(process.pid) ?? ''}`;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      // A symbolic link is made whole or not at all, exclusively, and needs no data
      // block: the lock is taken even on a full tmpfs, where the token file is retried.
      symlinkSync(own, path);
      return {
        path,
        async release() {
          if (readHolder(path)?.text === own) removeQuietly(path);
        },
      };
    } catch (error) {
      if (systemCode(error) !== 'EEXIST') {
        throw new EreceiptError('ERR_FILE_WRITE', `cannot create the ${what} ${path} (${systemCode(error) ?? 'error'}): check that the token folder is writable`, { cause: error });
      }
    }
    const found = readHolder(path);
    if (found === undefined) continue; // gone meanwhile: try again
    if (found.holder && isLive(found.holder)) return found.holder;
    takeStale(path, found.text);
  }
  throw new EreceiptError('ERR_SERVICE_UNAVAILABLE', `the ${what} ${path} keeps changing: another ereceipt-auth is starting; try again`);
}

/**
 * Removes a stale lock without ever removing a fresh one that another starting
 * `run` has just made: it is moved aside first, and put back if it was not the
 * stale one after all.
 */
function takeStale(path: string, staleText: string): void {
  const aside = `${path}.${process.pid}.stale`;
  try {
    renameSync(path, aside);
  } catch {
    return;
  }
  const moved = readHolder(aside);
  // Not the stale one after all: another run has just taken the lock; give it back.
  if (moved !== undefined && moved.text !== staleText && moved.holder) {
    try {
      symlinkSync(moved.text, path);
    } catch {
      // a third run took it meanwhile: it is that one's now
    }
  }
  removeQuietly(aside);
}

function removeQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // a lock that cannot be removed is found stale by the next run
  }
}
