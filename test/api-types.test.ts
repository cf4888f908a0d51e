// dist/index.d.ts, as a POS application written in TypeScript compiles against it:
// made from the source by the build, it must type a right use and refuse a wrong one.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { useTempDir } from './helpers/temp-dir';

const tempDir = useTempDir();
const TOP = join(__dirname, '..');

function compile(source: string): { status: number | null; output: string } {
  const dir = tempDir();
  writeFileSync(join(dir, 'app.ts'), source.replace('DIST', join(TOP, 'dist', 'index')));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, module: 'commonjs', moduleResolution: 'node', target: 'es2022', types: ['node'], typeRoots: [join(TOP, 'node_modules', '@types')], skipLibCheck: false },
      files: ['app.ts'],
    }),
  );
  const r = spawnSync(process.execPath, [join(TOP, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { encoding: 'utf8' });
  return { status: r.status, output: r.stdout + r.stderr };
}

it('a POS application using the API as documented type-checks against dist/index.d.ts', () => {
  const r = compile(`
import { createTokenManager, isTransient, type EreceiptError, type Logger, type PosTokenManager } from 'DIST';
const log: Logger = { error: console.error, warn: console.warn, info: () => {} };
const auth: PosTokenManager = createTokenManager('/etc/ereceipt-auth/config.json', { log });
async function submit(receipts: unknown[]): Promise<number> {
  const token: string = await auth.getToken();
  const fresh: string = await auth.forceRefresh(token);
  const res = await auth.authorizedFetch('https://api.invoicing.eta.gov.eg/api/v1/receiptsubmissions', { method: 'POST', body: JSON.stringify({ receipts }) });
  void fresh;
  return res.status;
}
submit([]).catch((error: EreceiptError) => (isTransient(error) ? 'later' : error.code)).finally(() => auth.close());
`);
  expect(r).toEqual({ status: 0, output: '' });
}, 30_000);

it('a wrong use is refused: the types are not any', () => {
  const r = compile(`
import { createTokenManager } from 'DIST';
const auth = createTokenManager('/etc/ereceipt-auth/config.json');
const n: number = auth.getToken();
auth.forceRefresh(42);
`);
  expect(r.status).not.toBe(0);
  expect(r.output).toMatch(/Type 'Promise<string>' is not assignable to type 'number'/);
  expect(r.output).toMatch(/Argument of type 'number' is not assignable to parameter of type 'string'/);
}, 30_000);
