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

/** Starts the python3 co-processor simulator on a real pseudo-terminal; stopped by its pid. */
export function startCoprocessor(args: string[] = []): Promise<Coprocessor> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn('python3', [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    const stop = () => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    };
    child.on('error', reject);
    child.stdout?.setEncoding('utf8').once('data', (line: string) => resolve({ path: line.trim().split('\n')[0] as string, stop }));
  });
}
