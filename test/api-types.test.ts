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
  writeFileSync(join(dir, 'app.ts'), source.replace('DIST', join(TOP, 'dist', 'index')).replace('SIM', join(TOP, 'dist', 'identity-sim')));
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

// One compile for the right uses and one for the wrong ones: each tsc run costs seconds.
it('a POS application, and its tests on the simulator, type-check against dist/index.d.ts and dist/identity-sim.d.ts', () => {
  const r = compile(`
import { createTokenManager, isTransient, type ClockOffset, type EreceiptError, type Logger, type PosTokenManager } from 'DIST';
import { startIdentitySim, type SimReceiptFault, type SimReceiptRecord } from 'SIM';
const log: Logger = { error: console.error, warn: console.warn, info: () => {} };
const auth: PosTokenManager = createTokenManager('/etc/ereceipt-auth/config.json', { log });
async function submit(receipts: unknown[]): Promise<number> {
  const token: string = await auth.getToken();
  const fresh: string = await auth.forceRefresh(token);
  const res = await auth.authorizedFetch('https://api.invoicing.eta.gov.eg/api/v1/receiptsubmissions', { method: 'POST', body: JSON.stringify({ receipts }) });
  void fresh;
  // What a receipt needs from the token: its issuer, whether it may be sent, and a date by the service's clock.
  const state = auth.state();
  const issuer: string | null | undefined = state.token?.taxpayerRin;
  const mayIssue: boolean | null | undefined = state.token?.b2c;
  const offset: ClockOffset | undefined = state.clockOffset;
  const dated = new Date(Date.now() + ((offset?.seconds ?? 0) - (offset?.precisionSeconds ?? 0)) * 1000);
  void [issuer, mayIssue, dated];
  return res.status;
}
submit([]).catch((error: EreceiptError) => (isTransient(error) ? 'later' : error.code)).finally(() => auth.close());

const throttled: SimReceiptFault = { status: 429, retryAfter: '2' };
async function test(): Promise<number> {
  const sim = await startIdentitySim({
    terminals: [{ serial: 'POS-1', modelFramework: '1', presharedKey: 'p', clientId: 'c', clientSecret: 's', tags: null }],
    lifetimeSeconds: 5,
    control: true,
    receipts: { throttleRate: 0.05, revokeRate: 0.01 },
  });
  sim.injectReceiptFaults(throttled, { status: 401 });
  sim.injectFaults({ kind: 'status', status: 503, retryAfter: '4' });
  const last: SimReceiptRecord | undefined = sim.receipts[0];
  await sim.close();
  return last?.status ?? 0;
}
void test();
`);
  expect(r).toEqual({ status: 0, output: '' });
}, 30_000);

it('wrong uses are refused: the types are not any', () => {
  const r = compile(`
import { createTokenManager } from 'DIST';
import { startIdentitySim } from 'SIM';
const auth = createTokenManager('/etc/ereceipt-auth/config.json');
const n: number = auth.getToken();
auth.forceRefresh(42);
void startIdentitySim({ terminals: [], receipts: { throttleRate: 'often' } });
`);
  expect(r.status).not.toBe(0);
  expect(r.output).toMatch(/Type 'Promise<string>' is not assignable to type 'number'/);
  expect(r.output).toMatch(/Argument of type 'number' is not assignable to parameter of type 'string'/);
  expect(r.output).toMatch(/app\.ts\(7,[0-9]+\): error TS2322: Type 'string' is not assignable to type 'number'/);
}, 30_000);
