import { constants, promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { EreceiptError, systemCode } from './errors';

export interface AtomicWriteOptions {
  /** File mode of the new file. */
  mode: number;
  /** Mode for the folder, if it has to be made. */
  dirMode?: number;
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
    await fs.mkdir(dir, { recursive: true, mode: options.dirMode ?? 0o700 });
    await removeStaleTemps(dir, basename(path));
    const handle = await fs.open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, options.mode);
    try {
      await handle.writeFile(data);
      // The umask may have narrowed the mode at creation; make it exactly what was asked.
      await handle.chmod(options.mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, path);
  } catch (error) {
    await fs.rm(temp, { force: true }).catch(() => {});
    throw new EreceiptError('ERR_FILE_WRITE', `cannot write the ${options.what} ${path} (${systemCode(error) ?? 'error'}): check that its folder exists, is writable and the disk is not full`, {
      cause: error,
    });
  }
  await syncDir(dir);
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

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return systemCode(error) === 'EPERM';
  }
}
