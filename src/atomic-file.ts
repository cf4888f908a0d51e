import { constants, promises as fs } from 'node:fs';
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
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string, options: AtomicWriteOptions): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
  try {
    await privateFolder(dir, options.what);
    await removeStaleTemps(dir, basename(path));
    const handle = await fs.open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, options.mode);
    try {
      await handle.writeFile(data);
      // The umask may have narrowed the mode at creation; make it exactly what was asked.
      await handle.chmod(options.mode);
      // Root (a technician provisioning, a boot script) writes on the service's behalf:
      // the file goes to the folder's owner, or the service could not read it.
      if (process.getuid?.() === 0) {
        const folder = await fs.stat(dir);
        if (folder.uid !== 0) await handle.chown(folder.uid, folder.gid);
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, path);
  } catch (error) {
    await fs.rm(temp, { force: true }).catch(() => {});
    if (isEreceiptError(error)) throw error;
    throw new EreceiptError('ERR_FILE_WRITE', `cannot write the ${options.what} ${path} (${systemCode(error) ?? 'error'}): check that its folder exists, is writable and the disk is not full`, {
      cause: error,
    });
  }
  await syncDir(dir);
}

/**
 * Makes the folder 0700 if it is missing, with its new entries made durable and,
 * when root makes it, owned by whoever owns the folder above (the service user's
 * own folder stays the service user's). A folder that exists is never re-moded
 * (it may be `/` or `/etc`): one that others may use is refused, by name.
 */
export async function privateFolder(dir: string, what: string): Promise<void> {
  let first: string | undefined;
  try {
    first = await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    const code = systemCode(error);
    if (code !== 'EEXIST' && code !== 'ENOTDIR') throw error;
    throw new EreceiptError('ERR_FILE_WRITE', `the folder ${dir} of the ${what} cannot be made: ${code === 'EEXIST' ? 'a file of that name is' : 'a file is on its path'} in the way: move it, or fix the ${what}'s path in the configuration`, {
      cause: error,
    });
  }
  if (first !== undefined) {
    const owner = process.getuid?.() === 0 ? await fs.stat(dirname(first)) : undefined;
    for (let made = dir; ; made = dirname(made)) {
      // lchown: a folder swapped for a link meanwhile must not hand its target to that owner.
      if (owner && owner.uid !== 0) await fs.lchown(made, owner.uid, owner.gid);
      await syncDir(dirname(made));
      if (made === first) break;
    }
    return;
  }
  const stat = await fs.stat(dir);
  if ((stat.mode & 0o077) === 0) return;
  throw new EreceiptError(
    'ERR_FILE_WRITE',
    `the folder ${dir} of the ${what} is open to other users (mode ${(stat.mode & 0o7777).toString(8)}), and a folder that exists is never changed: run chmod 700 ${dir} if it is the service's own, or give the file a folder of its own`,
  );
}

async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await fs.open(dir, constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Some file systems (and tmpfs on old kernels) refuse fsync on a folder; the rename is done.
  }
}

/** Temporary files left by a writer that was killed mid-write, found by their dead writer's pid. */
async function removeStaleTemps(dir: string, name: string): Promise<void> {
  const prefix = `.${name}.`;
  let entries: string[];
  try {
    entries = await fs.readdir(dir);
  } catch {
    return;
  }
  for (const entry of entries) {
    if (!entry.startsWith(prefix) || !entry.endsWith('.tmp')) continue;
    const pid = Number(entry.slice(prefix.length).split('.')[0]);
    if (Number.isInteger(pid) && pid > 0 && !isAlive(pid)) await fs.rm(join(dir, entry), { force: true }).catch(() => {});
  }
}
