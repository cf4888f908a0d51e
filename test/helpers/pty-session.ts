import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface PtyStep {
  /** A regular expression the output must show before `send` is typed. */
  expect: string;
  send?: string;
  /** A signal to send the command once `expect` is seen: 'HUP', 'TERM'… */
  signal?: string;
  /** Milliseconds to wait before the signal and the keys, as a person reading the screen would. */
  delay?: number;
  /** Then close the terminal's line (the pty's master side): a console cable pulled. Ends the steps. */
  hangup?: boolean;
}

export interface PtyResult {
  status: number;
  /** Everything the terminal showed, as the technician saw it. */
  output: string;
  /** The terminal's echo and line mode after the command ended: both must be back on. */
  echo: boolean | null;
  icanon: boolean | null;
  failedStep: number | null;
}

/** Runs `argv` on a real pseudo-terminal (python3's pty module), typing the steps' keys. */
export function ptySession(dir: string, argv: string[], steps: PtyStep[], env: Record<string, string> = {}, timeout = 20): Promise<PtyResult> {
  const script = join(dir, `pty-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(script, JSON.stringify({ argv, env, steps, timeout }));
  return new Promise((resolve, reject) => {
    execFile('python3', [join(__dirname, 'pty-session.py'), script], { timeout: (timeout + 10) * 1000 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`pty-session failed: ${error.message} ${stderr}`));
      const result = JSON.parse(stdout) as Omit<PtyResult, 'output'> & { output: string };
      resolve({ ...result, output: Buffer.from(result.output, 'base64').toString('latin1') });
    });
  });
}
