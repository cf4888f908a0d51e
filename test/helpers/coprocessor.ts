import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

// Beside this file in the tests; from build/ when bundled into the bench and platform scripts.
const SCRIPT = [join(__dirname, 'coprocessor.py'), join(__dirname, '..', 'test', 'helpers', 'coprocessor.py')].find((p) => existsSync(p)) as string;

export interface Coprocessor {
  /** The pty's terminal side, for hal.path. */
  path: string;
  stop(): void;
}

/**
 * Starts the python3 co-processor simulator on a real pseudo-terminal; stopped by its
 * pid. Fails at once when python3 cannot be started or the script exits before it
 * names its pty, and after 10 s of silence.
 */
export function startCoprocessor(args: string[] = []): Promise<Coprocessor> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn('python3', [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    const stop = () => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    };
    const timer = setTimeout(() => {
      stop();
      reject(new Error('the co-processor simulator did not name its pty within 10 s'));
    }, 10_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the co-processor simulator exited (${signal ?? `status ${code}`}) before it named its pty`));
    });
    child.stdout?.setEncoding('utf8').once('data', (line: string) => {
      clearTimeout(timer);
      resolve({ path: line.trim().split('\n')[0] as string, stop });
    });
  });
}
