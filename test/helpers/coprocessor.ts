import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export interface Coprocessor {
  /** The pty's terminal side, for hal.path. */
  path: string;
  stop(): void;
}

/** Starts the python3 co-processor simulator on a real pseudo-terminal; stopped by its pid. */
export function startCoprocessor(args: string[] = []): Promise<Coprocessor> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn('python3', [join(__dirname, 'coprocessor.py'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    const stop = () => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    };
    child.on('error', reject);
    child.stdout?.setEncoding('utf8').once('data', (line: string) => resolve({ path: line.trim().split('\n')[0] as string, stop }));
  });
}
