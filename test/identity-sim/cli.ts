// The simulator as its own process (`node dist/identity-sim.js`), for the soaks, an
// integrator's tests in another language, and manual runs.
import { readFile } from 'node:fs/promises';
import { isRecord } from './tokens';
import { startIdentitySim } from './server';
import type { IdentitySim, SimTerminal } from './types';

interface CliArgs {
  terminals: string;
  port: number;
  host: string;
  lifetime?: number;
  /** Tags for terminals that name none; null leaves the claim out. */
  tags?: string[] | null;
  rin?: string;
  control: boolean;
}

const USAGE = `usage: identity-sim --terminals FILE.json [--port N] [--host ADDRESS] [--lifetime SECONDS]
                    [--tags B2B,B2C | --tags none] [--rin NUMBER] [--control]

  --terminals FILE.json  the terminals the service knows: a JSON array of objects with
                         serial, modelFramework, presharedKey, clientId, clientSecret and,
                         optionally, osVersion, rin, tags (array, or null for no claim),
                         scopes, blocked, lifetimeSeconds
  --port N               port to listen on (default 0: any free port, printed at start)
  --host ADDRESS         address to listen on (default 127.0.0.1)
  --lifetime SECONDS     token lifetime (default 3600, as the real service)
  --tags LIST            the taxpayer tags (TaxProfTags) of terminals that give none:
                         comma-separated, "" for none, "none" to leave the claim out
                         (default B2B,B2C)
  --rin NUMBER           the taxpayer RIN (TaxRin) of terminals that give none
                         (default: a 9-digit number derived from the clientId)
  --control              serve /_sim/control on the same port to change faults,
                         lifetimes, terminals and receipt answers while running

Prints "listening URL" on stdout, then one line per request on stderr.`;

function parseCliArgs(argv: string[]): CliArgs | 'help' {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') return 'help';
    if (arg === '--control') {
      values.set('control', '');
      continue;
    }
    const match = /^--(terminals|port|host|lifetime|tags|rin)(?:=(.*))?$/.exec(arg);
    if (!match) throw new Error(`unknown argument ${arg}`);
    const name = match[1] ?? '';
    let value = match[2];
    if (value === undefined) {
      i += 1;
      value = argv[i];
      if (value === undefined) throw new Error(`--${name} needs a value`);
    }
    values.set(name, value);
  }
  const terminals = values.get('terminals');
  if (terminals === undefined) throw new Error('--terminals is required');
  const whole = (name: string, max: number): number | undefined => {
    const text = values.get(name);
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!/^\d+$/.test(text) || n > max) throw new Error(`--${name} must be a whole number from 0 to ${max}`);
    return n;
  };
  const lifetime = whole('lifetime', Number.MAX_SAFE_INTEGER);
  const tagsText = values.get('tags');
  const tags = tagsText === undefined ? undefined : tagsText === 'none' ? null : tagsText.split(',').filter((t) => t !== '');
  if (tags && !tags.every((t) => /^[\x21-\x7e]{1,64}$/.test(t) && !t.includes(','))) throw new Error('--tags must be comma-separated words');
  const rin = values.get('rin');
  if (rin !== undefined && !/^[\x21-\x7e]{1,64}$/.test(rin)) throw new Error('--rin must be one word');
  return {
    terminals,
    port: whole('port', 65535) ?? 0,
    host: values.get('host') ?? '127.0.0.1',
    ...(lifetime === undefined ? {} : { lifetime }),
    ...(tags === undefined ? {} : { tags }),
    ...(rin === undefined ? {} : { rin }),
    control: values.has('control'),
  };
}

function parseTerminals(value: unknown): SimTerminal[] {
  if (!Array.isArray(value)) throw new Error('the terminals file must hold a JSON array');
  return value.map((item: unknown, index) => {
    const where = `terminal ${index}`;
    if (!isRecord(item)) throw new Error(`${where} is not an object`);
    const text = (name: string): string => {
      const v = item[name];
      if (typeof v !== 'string' || v === '') throw new Error(`${where}: ${name} must be a non-empty string`);
      return v;
    };
    const list = (name: string): string[] | undefined => {
      const v = item[name];
      if (v === undefined) return undefined;
      if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new Error(`${where}: ${name} must be an array of strings`);
      return v as string[];
    };
    const terminal: SimTerminal = {
      serial: text('serial'),
      modelFramework: text('modelFramework'),
      presharedKey: text('presharedKey'),
      clientId: text('clientId'),
      clientSecret: text('clientSecret'),
    };
    if (item['osVersion'] !== undefined) terminal.osVersion = text('osVersion');
    if (item['tags'] === null) terminal.tags = null;
    else {
      const tags = list('tags');
      if (tags) terminal.tags = tags;
    }
    if (item['rin'] !== undefined) terminal.rin = text('rin');
    const scopes = list('scopes');
    if (scopes) terminal.scopes = scopes;
    if (item['blocked'] !== undefined) {
      if (typeof item['blocked'] !== 'boolean') throw new Error(`${where}: blocked must be true or false`);
      terminal.blocked = item['blocked'];
    }
    const lifetimeSeconds = item['lifetimeSeconds'];
    if (lifetimeSeconds !== undefined) {
      if (typeof lifetimeSeconds !== 'number' || !Number.isInteger(lifetimeSeconds) || lifetimeSeconds < 0) {
        throw new Error(`${where}: lifetimeSeconds must be a whole number, 0 or more`);
      }
      terminal.lifetimeSeconds = lifetimeSeconds;
    }
    return terminal;
  });
}

/**
 * Runs the simulator from the command line (see USAGE). Prints
 * `listening <url>` on stdout and one line per token request on stderr (status and
 * error code only), until SIGTERM or SIGINT.
 *
 * @param argv the arguments after the script name.
 * @returns the exit status: 0 after a signal, 64 bad usage, 66 unreadable terminals
 *   file, 65 invalid terminals file, 69 cannot listen.
 */
export async function main(argv: string[]): Promise<number> {
  let args: CliArgs | 'help';
  try {
    args = parseCliArgs(argv);
  } catch (error) {
    process.stderr.write(`identity-sim: ${(error as Error).message}\n${USAGE}\n`);
    return 64;
  }
  if (args === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let text: string;
  try {
    text = await readFile(args.terminals, 'utf8');
  } catch (error) {
    process.stderr.write(`identity-sim: cannot read ${args.terminals}: ${(error as NodeJS.ErrnoException).code ?? 'error'}\n`);
    return 66;
  }
  let terminals: SimTerminal[];
  try {
    terminals = parseTerminals(JSON.parse(text)).map((t) => ({
      ...t,
      ...(t.tags === undefined && args.tags !== undefined ? { tags: args.tags } : {}),
      ...(t.rin === undefined && args.rin !== undefined ? { rin: args.rin } : {}),
    }));
  } catch (error) {
    process.stderr.write(`identity-sim: ${args.terminals}: ${(error as Error).message}\n`);
    return 65;
  }
  let sim: IdentitySim;
  try {
    sim = await startIdentitySim({
      terminals,
      host: args.host,
      port: args.port,
      ...(args.lifetime === undefined ? {} : { lifetimeSeconds: args.lifetime }),
      control: args.control,
      onRequest: (r) => {
        process.stderr.write(`${r.method} ${r.path} ${r.status}${r.error === undefined ? '' : ` ${r.error}`}\n`);
      },
      onReceipt: (r) => {
        process.stderr.write(`POST /api/v1/receiptsubmissions ${r.status}${r.error === undefined ? '' : ` ${r.error}`}\n`);
      },
    });
  } catch (error) {
    process.stderr.write(`identity-sim: cannot listen on ${args.host}:${args.port}: ${(error as Error).message}\n`);
    return 69;
  }
  process.stdout.write(`listening ${sim.url}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  await sim.close();
  return 0;
}

