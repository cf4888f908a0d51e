import { closeSync, constants, existsSync, fchmodSync, fchownSync, fsyncSync, lchownSync, mkdirSync, openSync, readdirSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { EreceiptError, isEreceiptError, systemCode } from './errors';
import { isAlive } from './pid';

export interface AtomicWriteOptions {
  /** File mode of the new file. */
  mode: number;
  /** What the file is, for the error message: "credentials file". */
  what: string;
}

/**
 * Replaces `path` with `data` so that a reader, or the next boot after a power
 * cut, sees either the old file or the new one, never a mix: write a temporary
 * file in the same folder, fsync it, rename it over the old one, fsync the folder.
 *
 * Synchronous inside: these are files of a few hundred bytes, and Node's promise
 * file API would start the thread pool and load its own modules on every boot (about
 * 2 ms and 1.3 MiB each time, measured against these calls).
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string, options: AtomicWriteOptions): Promise<void> {
  writeFileAtomicSync(path, data, options);
}

function writeFileAtomicSync(path: string, data: Uint8Array | string, options: AtomicWriteOptions): void {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
  try {
    privateFolder(dir, options.what);
    removeStaleTemps(dir, basename(path));
    const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, options.mode);
    try {
      writeFileSync(fd, data);
      // The umask may have narrowed the mode at creation; make it exactly what was asked.
      fchmodSync(fd, options.mode);
      // Root (a technician provisioning, a boot script) writes on the service's behalf:
      // the file goes to the folder's owner, or the service could not read it.
      if (process.getuid?.() === 0) {
        const folder = statSync(dir);
        if (folder.uid !== 0) fchownSync(fd, folder.uid, folder.gid);
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (error) {
    try {
      rmSync(temp, { force: true });
    } catch {
      // nothing more to do: the error below says what failed
    }
    if (isEreceiptError(error)) throw error;
    throw new EreceiptError('ERR_FILE_WRITE', `cannot write the ${options.what} ${path} (${systemCode(error) ?? 'error'}): check that its folder exists, is writable and the disk is not full`, {
      cause: error,
    });
  }
  syncDir(dir);
}

/**
 * Makes the folder 0700 if it is missing, with its new entries made durable and,
 * when root makes it, owned by whoever owns the folder above (the service user's
 * own folder stays the service user's). A folder that exists is never re-moded
 * (it may be `/` or `/etc`): one that others may use is refused, by name.
 */
export function privateFolder(dir: string, what: string): void {
  let first: string | undefined;
  try {
    first = mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    const code = systemCode(error);
    if (code !== 'EEXIST' && code !== 'ENOTDIR') throw code === 'ENOENT' ? realCause(dir, error) : error;
    throw new EreceiptError('ERR_FILE_WRITE', `the folder ${dir} of the ${what} cannot be made: ${code === 'EEXIST' ? 'a file of that name is' : 'a file is on its path'} in the way: move it, or fix the ${what}'s path in the configuration`, {
      cause: error,
    });
  }
  if (first !== undefined) {
    const owner = process.getuid?.() === 0 ? statSync(dirname(first)) : undefined;
    for (let made = dir; ; made = dirname(made)) {
      // lchown: a folder swapped for a link meanwhile must not hand its target to that owner.
      if (owner && owner.uid !== 0) lchownSync(made, owner.uid, owner.gid);
      syncDir(dirname(made));
      if (made === first) break;
    }
    return;
  }
  const stat = statSync(dir);
  if ((stat.mode & 0o077) === 0) return;
  throw new EreceiptError(
    'ERR_FILE_WRITE',
    `the folder ${dir} of the ${what} is open to other users (mode ${(stat.mode & 0o7777).toString(8)}), and a folder that exists is never changed: run chmod 700 ${dir} if it is the service's own, or give the file a folder of its own`,
  );
}

/**
 * Node's recursive mkdir says ENOENT where the folder could not be made for another
 * reason (a read-only file system, a refused permission): the first missing folder,
 * made on its own, says which.
 */
function realCause(dir: string, error: unknown): unknown {
  let first = dir;
  while (dirname(first) !== first && !existsSync(dirname(first))) first = dirname(first);
  try {
    mkdirSync(first, { mode: 0o700 });
  } catch (cause) {
    return cause;
  }
  // Made after all (the path changed meanwhile): undone, and the first answer stands.
  try {
    rmdirSync(first);
  } catch {
    // someone else's now
  }
  return error;
}

function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, constants.O_RDONLY);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some file systems (and tmpfs on old kernels) refuse fsync on a folder; the rename is done.
  }
}

/** Temporary files left by a writer that was killed mid-write, found by their dead writer's pid. */
function removeStaleTemps(dir: string, name: string): void {
  const prefix = `.${name}.`;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const entry of entries) {
    if (!entry.startsWith(prefix) || !entry.endsWith('.tmp')) continue;
    const pid = Number(entry.slice(prefix.length).split('.')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || isAlive(pid)) continue;
    try {
      rmSync(join(dir, entry), { force: true });
    } catch {
      // left for the next writer
    }
  }
}
