// First of all: `run` must survive a SIGHUP (or act on a SIGTERM) that comes while it starts.
import { heldSignals } from './early-signals';
import { writeSync } from 'node:fs';
import { runCli } from './cli';

const argv = process.argv.slice(2);
const isRun = heldSignals !== undefined;

/**
 * Writes straight to the file descriptor: the process.stdout stream costs start-up
 * time that `token`, run by the POS application for every call, should not pay.
 * Falls back to the stream if the descriptor is non-blocking and full.
 */
function writer(fd: 1 | 2): (text: string) => void {
  return (text) => {
    let buffer = Buffer.from(text);
    try {
      while (buffer.length > 0) buffer = buffer.subarray(writeSync(fd, buffer));
    } catch (error) {
      const code = (error as { code?: string }).code;
      // The reader went away (`token | head -c0`), or the console hung up (EIO, EBADF once it is let go): nothing left to tell it.
      if (code === 'EPIPE' || code === 'EIO' || code === 'EBADF') return;
      if (code !== 'EAGAIN') throw error;
      (fd === 1 ? process.stdout : process.stderr).on('error', () => {}).write(buffer);
    }
  };
}

// The exit status goes to process.exitCode so that anything still queued drains first.
runCli(argv, {
  stdout: writer(1),
  stderr: writer(2),
  // A getter: opening stdin costs start-up time that only provision needs.
  get stdin() {
    return process.stdin;
  },
  env: process.env,
  ...(heldSignals ? { heldSignals } : {}),
}).then(
  (status) => {
    process.exitCode = status;
    // run has closed what it opened and written what it had to; a HAL read still in
    // flight (a slow co-processor, an AT command timing out) is abandoned, not waited
    // for: SIGTERM ends the service at once.
    if (isRun) process.exit(status);
  },
  // Only a failure to write the error line itself lands here; the status still tells.
  () => {
    process.exitCode = 70;
  },
);
