import { closeSync, fstatSync } from 'node:fs';
import { isatty } from 'node:tty';
import { EreceiptError } from './errors';

/** The terminal side the editor needs: a TTY input it can put in raw mode, and a writer. */
export interface RawInput extends NodeJS.EventEmitter {
  setRawMode(mode: boolean): unknown;
  resume(): unknown;
  pause(): unknown;
  isRaw?: boolean;
}

export interface AskOptions {
  /** Show what is typed (client_id), or nothing at all (the secrets). */
  echo: boolean;
  /** Characters beyond this are refused with a bell, so a pasted flood cannot grow without bound. */
  max: number;
}

export interface LineEditor {
  /** Reads one line. Backspace and DEL erase, Ctrl-U clears, Enter ends; Ctrl-C (or Ctrl-D on an empty line) aborts. */
  ask(prompt: string, options: AskOptions): Promise<string>;
  /**
   * Forgets what was typed ahead, and what arrives in the next `settleMs`: after an
   * error or before a question, a line typed for the previous prompt (a secret
   * meant for a hidden prompt, an Enter pressed while waiting) must not answer the next.
   */
  discardPending(settleMs?: number): void;
  /** Aborted by Ctrl-C or a hang-up, even between prompts (during the check with the service). */
  readonly signal: AbortSignal;
  /** Gives the terminal back as it was. Safe to call more than once. */
  close(): void;
}

const BELL = '\x07';
const CTRL_C = 0x03;
/** Signals that end the session while the terminal is raw; Node itself restores it only on SIGINT and SIGTERM. */
const HANGUPS: NodeJS.Signals[] = ['SIGHUP', 'SIGQUIT', 'SIGTERM'];

/**
 * Closes the standard descriptors that still point at a terminal that hung up.
 * At exit Node puts back the terminal modes it found at start, and on a dead
 * terminal that fails an assertion and aborts (SIGABRT, a core dump); a closed
 * descriptor it skips. Nothing written there could reach anyone anyway.
 */
function forgetDeadTerminal(): void {
  let device: number;
  try {
    device = fstatSync(0).rdev;
  } catch {
    return;
  }
  for (const fd of [0, 1, 2]) {
    try {
      const stat = fstatSync(fd);
      if (stat.isCharacterDevice() && stat.rdev === device) closeSync(fd);
    } catch {
      // already closed
    }
  }
}

/**
 * A minimal line editor in raw mode, for a dumb serial console: plain ASCII, no
 * cursor movement beyond backspace-space-backspace, nothing echoed for secrets.
 * Raw mode also means Ctrl-C arrives as a byte rather than a signal, so an abort
 * always passes through `close()` and the terminal is never left raw.
 */
export function createLineEditor(input: RawInput, write: (text: string) => void, now: () => number = Date.now): LineEditor {
  const wasRaw = input.isRaw ?? false;
  /** Whether the session runs on the process's own terminal (not a test's stand-in). */
  const onTerminal = input === process.stdin && isatty(0);
  const queue: number[] = [];
  const aborter = new AbortController();
  let current: { buffer: string; options: AskOptions; resolve: (line: string) => void; reject: (error: Error) => void } | undefined;
  let escape = 0;
  let lastWasCr = false;
  let closed = false;
  let ignoreUntil = 0;

  const interrupted = () => new EreceiptError('ERR_INTERRUPTED', 'stopped: the previous credentials are in place');

  const restore = () => {
    if (closed) return;
    closed = true;
    input.off('data', onData);
    input.off('end', onEnd);
    input.off('error', onEnd);
    // On a line that hung up, setting the mode fails (EIO, reported as an 'error' event).
    input.on('error', () => {});
    try {
      input.setRawMode(wasRaw);
    } catch {
      // reported below
    }
    // A hung-up terminal is no terminal any more: there is nothing left to give back.
    if (onTerminal && !isatty(0)) forgetDeadTerminal();
    input.pause();
    process.off('exit', restore);
    for (const signal of HANGUPS) process.off(signal, onHangup);
  };

  function stop(echo: string): void {
    const line = current;
    current = undefined;
    queue.length = 0;
    write(echo);
    restore();
    aborter.abort();
    line?.reject(interrupted());
  }

  function onHangup(): void {
    stop('\n');
  }

  function take(byte: number): void {
    const line = current;
    if (!line) return;
    const cr = lastWasCr;
    lastWasCr = byte === 0x0d;
    if (escape > 0) {
      // Arrow keys and the like (ESC [ ... final byte): swallowed whole.
      if (escape === 1) escape = byte === 0x5b || byte === 0x4f ? 2 : 0;
      else if (byte >= 0x40 && byte <= 0x7e) escape = 0;
      return;
    }
    switch (byte) {
      case 0x04:
        if (line.buffer === '') stop('^D\n');
        return;
      case 0x0d:
      case 0x0a:
        if (byte === 0x0a && cr) return;
        current = undefined;
        // Raw mode in Node keeps the LF to CR LF output mapping.
        write('\n');
        return line.resolve(line.buffer);
      case 0x08:
      case 0x7f:
        if (line.buffer === '') return write(BELL);
        line.buffer = line.buffer.slice(0, -1);
        if (line.options.echo) write('\b \b');
        return;
      case 0x15:
        if (line.options.echo) write('\b \b'.repeat(line.buffer.length));
        line.buffer = '';
        return;
      case 0x1b:
        escape = 1;
        return;
      case 0x00:
        return; // sent after CR by some terminals
      default:
        if (byte < 0x20 || byte > 0x7e || line.buffer.length >= line.options.max) return write(BELL);
        line.buffer += String.fromCharCode(byte);
        if (line.options.echo) write(String.fromCharCode(byte));
    }
  }

  function onData(chunk: Buffer | string): void {
    for (const byte of typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk) {
      // Ctrl-C stops at once, whatever is going on: a prompt, the check, a device read.
      if (byte === CTRL_C) return stop('^C\n');
      if (now() < ignoreUntil) continue;
      if (current) take(byte);
      else queue.push(byte);
    }
  }

  // The line ending (a hang-up: EOF or EIO, sometimes before the SIGHUP) ends the session too.
  const onEnd = () => stop('\n');
  input.setRawMode(true);
  input.on('data', onData);
  input.once('end', onEnd);
  input.once('error', onEnd);
  input.resume();
  // Whatever ends the process, the console must not stay raw.
  process.on('exit', restore);
  for (const signal of HANGUPS) process.once(signal, onHangup);

  return {
    ask(prompt, options) {
      if (closed) return Promise.reject(interrupted());
      write(prompt);
      return new Promise((resolve, reject) => {
        current = { buffer: '', options, resolve, reject };
        // Typed ahead while the program was busy: taken now, in order.
        while (queue.length > 0 && current) take(queue.shift() as number);
      });
    },
    discardPending(settleMs = 250) {
      queue.length = 0;
      escape = 0;
      ignoreUntil = now() + settleMs;
    },
    signal: aborter.signal,
    close: restore,
  };
}
