import { readFileSync } from 'node:fs';
import { printable } from './printable';
import { readSmallFileSync } from './read-file';
import { dirname, resolve } from 'node:path';
import { EreceiptError, systemCode } from './errors';
import type { SimHalFault } from '../hal/sim';

export const DEFAULT_CONFIG_PATH = '/etc/ereceipt-auth/config.json';
export const DEFAULT_CREDENTIALS_FILE = '/var/lib/ereceipt-auth/credentials';
export const DEFAULT_TOKEN_FILE = '/run/ereceipt-auth/token.json';
const DEFAULT_TIMEOUT_SECONDS = 30;
const MAX_CONFIG_BYTES = 64 * 1024;

export type HalConfig =
  | { driver: 'eeprom'; path: string; offset: number; serialTlv: number; modelTlv: number }
  | { driver: 'serial'; path: string; baudRate: number; timeoutMs: number; tries: number }
  | { driver: 'sim'; serial: string; modelFramework: string; fault?: SimHalFault; delayMs?: number; deviceSecret?: string };

export interface Config {
  /** The file this configuration came from. */
  configPath: string;
  /** Base address of the identity service, without a trailing slash. */
  identityUrl: string;
  hal: HalConfig;
  osVersion?: string;
  credentialsFile: string;
  tokenFile: string;
  scope?: string;
  caFile?: string;
  legacyServerConnect: boolean;
  timeoutSeconds: number;
  /** The proxy to reach the identity service through; `''` for none whatever the environment says; absent: the environment decides. */
  proxy?: string;
}

/** Which configuration file to read: `--config`, then `$ERECEIPT_AUTH_CONFIG`, then the default. */
export function configPathFrom(argument: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return argument ?? (env['ERECEIPT_AUTH_CONFIG'] || DEFAULT_CONFIG_PATH);
}

/** Reads and validates the configuration file; every problem is `ERR_CONFIG` (exit 78). */
export function loadConfig(path: string): Config {
  let text: string;
  try {
    // A byte-order mark, as Notepad saves UTF-8, is not part of the JSON.
    text = readSmallFileSync(path, MAX_CONFIG_BYTES).toString('utf8').replace(/^\uFEFF/, '');
  } catch (error) {
    const code = systemCode(error);
    const why =
      code === 'ENOENT'
        ? 'does not exist: create it or pass --config FILE'
        : code === 'EACCES' || code === 'EPERM'
          ? 'is not readable by this user (permission denied): run as the service user or root, or fix its permissions'
          : code === 'ENOTREG'
            ? 'is not a regular file (a folder, a FIFO or a device): pass --config with the configuration file'
            : code === 'ETOOBIG'
              ? `is larger than ${MAX_CONFIG_BYTES / 1024} KiB, too large to be the configuration: pass --config with the configuration file`
              : `cannot be read (${code ?? 'error'}): check the storage`;
    throw new EreceiptError('ERR_CONFIG', `configuration file ${path} ${why}`, { cause: error });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw fail(path, `is not valid JSON (${(error as Error).message})`);
  }
  return parseConfig(raw, path);
}

/** Validates an already parsed configuration object. Relative paths are taken from the file's folder. */
export function parseConfig(raw: unknown, configPath: string): Config {
  const r = new Reader(raw, configPath, '');
  const base = dirname(resolve(configPath));
  const file = (value: string) => resolve(base, value);

  const identityUrl = checkUrl(r.string('identityUrl', { required: true }), configPath);
  const hal = readHal(r.object('hal', { required: true }), configPath, file);
  const osVersion = r.string('osVersion', { max: 50, header: true });
  const credentialsFile = file(r.string('credentialsFile') ?? DEFAULT_CREDENTIALS_FILE);
  const tokenFile = file(r.string('tokenFile') ?? DEFAULT_TOKEN_FILE);
  const scope = r.string('scope', { max: 200, header: true });
  const caFileRaw = r.string('caFile');
  const legacyServerConnect = r.boolean('legacyServerConnect') ?? false;
  const timeoutSeconds = r.number('timeoutSeconds', { min: 1, max: 600 }) ?? DEFAULT_TIMEOUT_SECONDS;
  // Its form is checked where it is used (src/proxy.ts, loaded only when a proxy is set).
  const proxy = r.string('proxy', { max: 2000, empty: true });
  r.noOtherKeys();

  if (credentialsFile === tokenFile) throw fail(configPath, 'uses the same path for credentialsFile and tokenFile');
  return {
    configPath,
    identityUrl,
    hal,
    ...(osVersion === undefined ? {} : { osVersion }),
    credentialsFile,
    tokenFile,
    ...(scope === undefined ? {} : { scope }),
    ...(caFileRaw === undefined ? {} : { caFile: file(caFileRaw) }),
    legacyServerConnect,
    timeoutSeconds,
    ...(proxy === undefined ? {} : { proxy }),
  };
}

function readHal(raw: Record<string, unknown>, configPath: string, file: (p: string) => string): HalConfig {
  const r = new Reader(raw, configPath, 'hal.');
  const driver = r.string('driver', { required: true });
  let hal: HalConfig;
  switch (driver) {
    case 'eeprom':
      hal = {
        driver,
        path: file(r.string('path', { required: true })),
        offset: r.number('offset', { min: 0, max: 1 << 30, integer: true }) ?? 0,
        serialTlv: r.number('serialTlv', { min: 0, max: 0xfd, integer: true }) ?? 0x23,
        modelTlv: r.number('modelTlv', { min: 0, max: 0xfd, integer: true }) ?? 0x26,
      };
      break;
    case 'serial':
      hal = {
        driver,
        path: r.string('path', { required: true }),
        baudRate: r.number('baudRate', { min: 50, max: 4_000_000, integer: true }) ?? 115200,
        timeoutMs: r.number('timeoutMs', { min: 50, max: 60_000, integer: true }) ?? 2000,
        tries: r.number('tries', { min: 1, max: 10, integer: true }) ?? 3,
      };
      break;
    case 'sim': {
      const fault = r.string('fault');
      if (fault !== undefined && fault !== 'missing' && fault !== 'garbage' && fault !== 'crash') {
        throw fail(configPath, 'has hal.fault that is not one of "missing", "garbage", "crash"');
      }
      const delayMs = r.number('delayMs', { min: 0, max: 600_000, integer: true });
      const deviceSecret = r.string('deviceSecret');
      hal = {
        driver,
        serial: r.string('serial', { required: true }),
        modelFramework: r.string('modelFramework', { required: true }),
        ...(fault === undefined ? {} : { fault }),
        ...(delayMs === undefined ? {} : { delayMs }),
        ...(deviceSecret === undefined ? {} : { deviceSecret }),
      };
      break;
    }
    default:
      throw fail(configPath, `has hal.driver ${JSON.stringify(driver)}, which is not one of "eeprom", "serial", "sim"`);
  }
  r.noOtherKeys();
  return hal;
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

function checkUrl(value: string, configPath: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw fail(configPath, `has identityUrl ${JSON.stringify(value)}, which is not a URL`);
  }
  if (url.protocol === 'http:' && !LOOPBACK.test(url.hostname)) {
    throw fail(configPath, 'has an http:// identityUrl for a host that is not loopback: use https://');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw fail(configPath, 'has an identityUrl that is not https://');
  if (url.username || url.password || url.search || url.hash) {
    throw fail(configPath, 'has an identityUrl with user, query or fragment parts: give the base address only');
  }
  return url.href.replace(/\/+$/, '');
}

function fail(configPath: string, what: string): EreceiptError {
  return new EreceiptError('ERR_CONFIG', `configuration file ${configPath} ${printable(what)}: fix the file`);
}

interface FieldRules {
  required?: boolean;
  /** `""` is a value of its own (for `proxy`: none). */
  empty?: boolean;
  /** Sent as an HTTP header: printable ASCII only. */
  header?: boolean;
  max?: number;
  min?: number;
  integer?: boolean;
}

/** Takes typed fields off a JSON object and notices the keys nobody took. */
class Reader {
  readonly #object: Record<string, unknown>;
  readonly #taken = new Set<string>();

  constructor(
    raw: unknown,
    readonly configPath: string,
    readonly prefix: string,
  ) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw fail(configPath, prefix ? `has ${prefix.slice(0, -1)} that is not an object` : 'does not hold a JSON object');
    }
    this.#object = raw as Record<string, unknown>;
  }

  #take(key: string, kind: string, rules: FieldRules): unknown {
    this.#taken.add(key);
    const value = this.#object[key];
    if (value === undefined) {
      if (rules.required) throw fail(this.configPath, `lacks ${this.prefix}${key} (${kind}), which is required`);
      return undefined;
    }
    return value;
  }

  #wrong(key: string, kind: string): EreceiptError {
    return fail(this.configPath, `has ${this.prefix}${key} that is not ${kind}`);
  }

  string(key: string, rules: FieldRules & { required: true }): string;
  string(key: string, rules?: FieldRules): string | undefined;
  string(key: string, rules: FieldRules = {}): string | undefined {
    const value = this.#take(key, 'a string', rules);
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || (value.length === 0 && !rules.empty)) throw this.#wrong(key, rules.empty ? 'a string' : 'a non-empty string');
    if (rules.max !== undefined && value.length > rules.max) throw this.#wrong(key, `at most ${rules.max} characters long`);
    if (rules.header && !/^[\x20-\x7e]+$/.test(value)) throw this.#wrong(key, 'printable ASCII (it is sent as an HTTP header)');
    return value;
  }

  number(key: string, rules: FieldRules = {}): number | undefined {
    const value = this.#take(key, 'a number', rules);
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isFinite(value)) throw this.#wrong(key, 'a number');
    if (rules.integer && !Number.isInteger(value)) throw this.#wrong(key, 'a whole number');
    if ((rules.min !== undefined && value < rules.min) || (rules.max !== undefined && value > rules.max)) {
      throw this.#wrong(key, rules.min === undefined ? `at most ${rules.max}` : rules.max === undefined ? `at least ${rules.min}` : `between ${rules.min} and ${rules.max}`);
    }
    return value;
  }

  boolean(key: string): boolean | undefined {
    const value = this.#take(key, 'true or false', {});
    if (value === undefined) return undefined;
    if (typeof value !== 'boolean') throw this.#wrong(key, 'true or false');
    return value;
  }

  object(key: string, rules: FieldRules & { required: true }): Record<string, unknown> {
    const value = this.#take(key, 'an object', rules);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw this.#wrong(key, 'an object');
    return value as Record<string, unknown>;
  }

  noOtherKeys(): void {
    const unknown = Object.keys(this.#object).filter((key) => !this.#taken.has(key));
    if (unknown.length > 0) {
      throw fail(this.configPath, `has unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => this.prefix + k).join(', ')}`);
    }
  }
}

const OS_VERSION_MAX = 50;

/**
 * The `pososversion` to send: the configured one, else the OS's own name from
 * os-release, else the kernel's.
 */
export function resolveOsVersion(config: Pick<Config, 'osVersion'>, osReleasePath = '/etc/os-release'): string {
  if (config.osVersion) return config.osVersion;
  try {
    const fields = new Map<string, string>();
    for (const line of readFileSync(osReleasePath, 'utf8').split('\n')) {
      const match = /^([A-Z_]+)=("?)(.*)\2$/.exec(line.trim());
      if (match?.[1] && match[3] !== undefined) fields.set(match[1], match[3]);
    }
    // It goes out as an HTTP header: printable ASCII only.
    const ascii = (value: string | undefined) => value?.replace(/[^\x20-\x7e]+/g, ' ').replace(/\s+/g, ' ').trim();
    const pretty = ascii(fields.get('PRETTY_NAME'));
    if (pretty && pretty.length <= OS_VERSION_MAX) return pretty;
    const short = ascii([fields.get('NAME'), fields.get('VERSION_ID')].filter(Boolean).join(' '));
    if (short) return short.slice(0, OS_VERSION_MAX);
  } catch {
    // No os-release (a minimal image): the kernel's name is the best we have.
  }
  // node:os is loaded only here: every other start skips it.
  const { release, type } = require('node:os') as typeof import('node:os');
  return `${type()} ${release()}`.replace(/[^\x20-\x7e]/g, '').slice(0, OS_VERSION_MAX);
}
