import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** Why a small input file could not be read: a system code (`ENOENT`, `EACCES`, `EROFS`…), or one of these two. */
export type ReadFailure = 'ENOTREG' | 'ETOOBIG';

/**
 * Reads a small regular file whole, at most `maxBytes`. A FIFO, a device or a folder
 * is refused without reading or waiting on it (opened non-blocking, checked with
 * fstat), and so is a file that grows past the cap while it is read: `/dev/zero` or
 * a FIFO given as the configuration must not fill the memory or hang the terminal.
 * Failures throw an Error whose `code` is a system code or a {@link ReadFailure}.
 */
export function readSmallFileSync(path: string, maxBytes: number): Buffer {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: 'ENOTREG' satisfies ReadFailure });
    // Room for what fstat says and one byte more; grown while the file turns out longer
    // (it grew meanwhile, or it is a /proc or /sys file that says 0), up to the cap.
    let buffer = Buffer.allocUnsafe(Math.min(stat.size, maxBytes) + 1);
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        const grown = Buffer.allocUnsafe(Math.min(buffer.length * 2 + 4096, maxBytes + 1));
        buffer.copy(grown, 0, 0, length);
        buffer = grown;
      }
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > maxBytes) throw Object.assign(new Error(`${path} is larger than ${maxBytes} bytes`), { code: 'ETOOBIG' satisfies ReadFailure });
    }
    return buffer.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}
