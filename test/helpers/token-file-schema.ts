// The token file's contract (schema/token-file.schema.json), checked by a real JSON
// Schema validator against every token file the tests see the program write.
import { readdirSync, readFileSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';

export const SCHEMA_FILE = join(__dirname, '..', '..', 'schema', 'token-file.schema.json');
const schema = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as Record<string, unknown>;

// The published schema lets later versions add fields; here, every field the program
// writes must be in it, so one added without documenting it fails the tests.
const closed = { ...schema, additionalProperties: false };
// The patterns carry what "format" says: no format plug-in is needed.
const validate = new Ajv2020({ strict: true, allErrors: true, validateFormats: false }).compile(closed);

/** What is wrong with `value` as a token file, one line per problem; empty when it conforms. */
export function tokenFileProblems(value: unknown): string[] {
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '(the file)'} ${e.message ?? 'is invalid'}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params['additionalProperty'])})` : ''}`);
}

export function expectValidTokenFile(value: unknown): void {
  const problems = tokenFileProblems(value);
  if (problems.length) throw new Error(`the token file does not match schema/token-file.schema.json: ${problems.join('; ')}\n${JSON.stringify(value)}`);
}

/** Every token file under `dir` (any JSON object with an access_token), a few levels down. */
export function tokenFilesIn(dir: string, depth = 4): string[] {
  const found: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return found;
  }
  for (const name of names) {
    const path = join(dir, name);
    let stat;
    try {
      stat = lstatSync(path);
    } catch {
      continue;
    }
    if (stat.isDirectory() && depth > 0) found.push(...tokenFilesIn(path, depth - 1));
    else if (stat.isFile() && name.endsWith('.json') && stat.size < 64 * 1024) {
      try {
        const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
        if (typeof value === 'object' && value !== null && 'access_token' in value) found.push(path);
      } catch {
        // Not JSON (a test's garbage, a half-written temp file): not a token file.
      }
    }
  }
  return found;
}

/** The problems of every token file under `dir`, each line naming its file. */
export function tokenFileProblemsIn(dir: string): string[] {
  return tokenFilesIn(dir).flatMap((path) => tokenFileProblems(JSON.parse(readFileSync(path, 'utf8'))).map((p) => `${path}: ${p}`));
}
