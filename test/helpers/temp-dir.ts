import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tokenFileProblemsIn } from './token-file-schema';

/**
 * A fresh folder under the system temp dir, removed after the test file. Every token
 * file left in it is checked against schema/token-file.schema.json first: a file the
 * program wrote that breaks the contract fails the test file.
 */
export function useTempDir(): () => string {
  const made: string[] = [];
  afterAll(() => {
    const problems = made.flatMap(tokenFileProblemsIn);
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
    if (problems.length) throw new Error(`token files that do not match the schema:\n${problems.join('\n')}`);
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), 'ereceipt-auth-'));
    made.push(dir);
    return dir;
  };
}
