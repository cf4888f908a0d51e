import { resolveOsVersion } from '../config';
import { readCredentials } from '../credentials';
import { EreceiptError, exitStatusOf, type ErrorCode } from '../errors';
import { hasB2c } from '../jwt';
import { lockHolder } from '../run-lock';
import { printable } from '../printable';
import { loadTunnel, proxyMaybeSet } from '../proxy-env';
import { redact } from '../secret';
import { readState, readTokenFile, secondsLeft } from '../token-file';
import { describeArg } from './args';
import type { CommandContext } from './context';

/** What `status --json` prints. Never a secret: at most the last four characters of the client_id. */
export interface StatusReport {
  config: string;
  identityUrl: string;
  device: { driver: string; serial?: string; modelFramework?: string; osVersion: string; error?: string };
  credentials: { file: string; state: 'ok' | 'absent' | 'unreadable' | 'unchecked'; clientIdEnd?: string; error?: string };
  token: {
    file: string;
    state: 'valid' | 'expired' | 'absent';
    expiresAt?: string;
    secondsLeft?: number;
    obtainedAt?: string;
    scope?: string | null;
    /** The taxpayer the token was issued to (`TaxRin`); null when the token does not say. */
    taxpayerRin?: string | null;
    /** The taxpayer's tags (`TaxProfTags`); null when the token does not list them. */
    taxpayerTags?: string[] | null;
    /** true or false when the token lists the taxpayer's tags, null when it does not say. */
    b2c?: boolean | null;
  };
  lastSuccessAt?: string;
  lastError?: { code: string; message: string; at: string };
  /** The identity service's clock minus the local clock, seconds to the tenth, from the last login whose answer had a `Date`. */
  clockOffsetSeconds?: number;
  /** The true offset is within this many seconds of `clockOffsetSeconds`. */
  clockOffsetPrecisionSeconds?: number;
  /** How the identity service is reached: through a proxy (`host:port` only, never its credentials), or directly and why. */
  proxy: { used: boolean; address?: string; source?: string; reason?: string; error?: string };
  /** The resident `run` service, from the state file. */
  service?: { running: boolean; pid: number; startedAt: string; stoppedAt?: string; nextAttemptAt?: string; rejected: boolean; requests: number };
  /** With --trace: the HAL's raw exchange, bounded. */
  halTrace?: string[];
}

/** Enough for a whole EEPROM listing or a few retries of a serial exchange, and no flood on a 115200-baud console. */
const MAX_TRACE_LINES = 60;

/**
 * `status [--json]`: what this terminal is, what it holds, and what happened last.
 * Exits 0 only while a valid token is held, so that monitoring can rely on it;
 * otherwise, after the report, one line on stderr says why there is none.
 */
export async function status(ctx: CommandContext, args: string[]): Promise<void> {
  const json = args.includes('--json');
  const trace = args.includes('--trace');
  const other = args.find((arg) => arg !== '--json' && arg !== '--trace');
  if (other !== undefined) throw new EreceiptError('ERR_USAGE', `status does not take ${describeArg(other)}: see --help`);
  const report = await collect(ctx, trace);
  ctx.stdout(json ? `${JSON.stringify(report, null, 2)}\n` : render(report));
  const missing = whyNoToken(report);
  if (missing) throw missing;
}

/**
 * Why no valid token is held, as the error whose exit status monitoring reads: 78
 * not provisioned or credentials unreadable, 77 rejected, 75 the service failed
 * (or nothing has tried yet), the HAL's own status when the device failed last.
 */
export function whyNoToken(report: StatusReport): EreceiptError | undefined {
  if (report.token.state === 'valid') return undefined;
  const none = report.token.state === 'expired' ? `the token expired at ${report.token.expiresAt}` : 'there is no token';
  const { credentials, lastError } = report;
  if (credentials.state === 'absent') return new EreceiptError('ERR_NOT_PROVISIONED', `${none}: the terminal is not provisioned: run "ereceipt-auth provision"`);
  if (credentials.state === 'unreadable') return new EreceiptError('ERR_CREDENTIALS_UNREADABLE', `${none}: the credentials file cannot be used here: re-run provisioning`);
  const code = lastError?.code;
  if (code === 'ERR_CREDENTIALS_REJECTED') return new EreceiptError('ERR_CREDENTIALS_REJECTED', `${none}: the identity service rejected the credentials (see last error): re-run provisioning`);
  if (code !== undefined && Object.prototype.hasOwnProperty.call(exitStatusOf, code) && code !== 'ERR_SERVICE_UNAVAILABLE') {
    return new EreceiptError(code as ErrorCode, `${none}: the last login failed (see last error)`);
  }
  const service = report.service?.running ? ': the service keeps trying' : ': run "ereceipt-auth boot", or start the service';
  return new EreceiptError('ERR_SERVICE_UNAVAILABLE', `${none}${lastError ? ', the identity service could not be reached or failed (see last error)' : ''}${service}`);
}

async function collect(ctx: CommandContext, trace: boolean): Promise<StatusReport> {
  const { config } = ctx;
  const now = ctx.clocks.now();
  const report: StatusReport = {
    config: config.configPath,
    identityUrl: config.identityUrl,
    device: { driver: config.hal.driver, osVersion: resolveOsVersion(config) },
    credentials: { file: config.credentialsFile, state: 'unchecked' },
    token: { file: config.tokenFile, state: 'absent' },
    proxy: await describeProxy(config),
  };

  const lines: string[] = [];
  const traceLine = (line: string) => {
    if (lines.length < MAX_TRACE_LINES) lines.push(line);
    else if (lines.length === MAX_TRACE_LINES) lines.push('... (more not shown)');
  };
  if (trace) report.halTrace = lines;
  try {
    const hal = await ctx.hal(trace ? { trace: traceLine } : {});
    report.device.driver = hal.description;
    const identity = await hal.identity();
    report.device.serial = identity.serial;
    report.device.modelFramework = identity.modelFramework;
    const deviceSecret = hal.deviceSecret ? await hal.deviceSecret() : undefined;
    const credentials = await readCredentials(config.credentialsFile, { serial: identity.serial, ...(deviceSecret ? { deviceSecret } : {}) }).catch(
      (error: unknown) => {
        const code = (error as EreceiptError).code;
        report.credentials.state = code === 'ERR_NOT_PROVISIONED' ? 'absent' : 'unreadable';
        report.credentials.error = redact((error as Error).message);
        return undefined;
      },
    );
    if (credentials) {
      report.credentials.state = 'ok';
      report.credentials.clientIdEnd = credentials.clientId.slice(-4);
    }
  } catch (error) {
    report.device.error = redact((error as Error).message);
  }

  const file = await readTokenFile(config.tokenFile);
  if (file) {
    const left = Math.floor(secondsLeft(file, now));
    report.token = {
      file: config.tokenFile,
      state: left > 0 ? 'valid' : 'expired',
      expiresAt: file.expires_at,
      secondsLeft: Math.max(0, left),
      obtainedAt: file.obtained_at,
      scope: file.scope,
      taxpayerRin: file.taxpayer_rin ?? null,
      taxpayerTags: file.taxpayer_tags ?? null,
      b2c: hasB2c(file.taxpayer_tags) ?? null,
    };
  }
  const state = await readState(config.tokenFile);
  if (state.last_success_at) report.lastSuccessAt = state.last_success_at;
  if (state.last_error) report.lastError = { ...state.last_error, message: redact(state.last_error.message) };
  // The token file's offset was written with its token (none: none known); without a token file, the last login's.
  const clock = file ?? state;
  if (typeof clock.clock_offset_seconds === 'number') report.clockOffsetSeconds = clock.clock_offset_seconds;
  if (typeof clock.clock_offset_precision_seconds === 'number') report.clockOffsetPrecisionSeconds = clock.clock_offset_precision_seconds;
  // The lock names the live service for sure (pid and start time); the state file says what the last one did.
  const holder = await lockHolder(config.tokenFile);
  const last = state.service;
  if (last || holder) {
    const same = last !== undefined && holder?.pid === last.pid;
    report.service = {
      running: holder !== undefined,
      pid: holder?.pid ?? (last as NonNullable<typeof last>).pid,
      startedAt: last && (same || !holder) ? last.started_at : (holder as NonNullable<typeof holder>).since,
      ...(last?.stopped_at && !holder ? { stoppedAt: last.stopped_at } : {}),
      ...(last?.next_attempt_at && (same || !holder) ? { nextAttemptAt: last.next_attempt_at } : {}),
      rejected: same || !holder ? (last?.rejected ?? false) : false,
      requests: same || !holder ? (last?.requests ?? 0) : 0,
    };
  }
  return report;
}

async function describeProxy(config: CommandContext['config']): Promise<StatusReport['proxy']> {
  if (!proxyMaybeSet(config.identityUrl, config.proxy)) return { used: false, reason: config.proxy === '' ? 'turned off in the configuration ("proxy": "")' : 'none set' };
  // The rest is the proxy code's own (proxy-agent.js), loaded only here.
  const shown = (await loadTunnel(config).catch((error: Error) => ({ describeProxy: () => ({ used: false, error: error.message }) }))).describeProxy(config.identityUrl, config.proxy);
  return shown.error ? { ...shown, error: redact(shown.error) } : shown;
}

function render(r: StatusReport): string {
  const lines: string[] = [];
  // Values come from the service, the state file and the HAL: one printable line each.
  const row = (label: string, value: string) => lines.push(`${`${label}:`.padEnd(14)}${printable(value, 200)}`);
  row('config', r.config);
  row('identity', r.identityUrl);
  row('driver', r.device.driver);
  if (r.device.error) row('device', `UNAVAILABLE - ${r.device.error}`);
  else {
    row('serial', r.device.serial ?? '');
    row('model', r.device.modelFramework ?? '');
  }
  row('os version', r.device.osVersion);
  const creds = r.credentials;
  row(
    'credentials',
    creds.state === 'ok'
      ? `ok (client_id ...${creds.clientIdEnd ?? ''}) in ${creds.file}`
      : creds.state === 'unchecked'
        ? `not checked (the device could not be read) in ${creds.file}`
        : `${creds.state.toUpperCase()} - ${creds.error ?? ''}`,
  );
  const t = r.token;
  if (t.state === 'absent') row('token', `none in ${t.file}`);
  else {
    row('token', t.state === 'valid' ? `valid until ${t.expiresAt} (${t.secondsLeft} s left)` : `EXPIRED at ${t.expiresAt}`);
    row('scope', t.scope ?? '(none stated)');
    row('taxpayer', t.taxpayerRin ? `RIN ${t.taxpayerRin}` : 'not stated in the token');
    row('tags', t.taxpayerTags ? t.taxpayerTags.join(', ') || '(none)' : 'not stated in the token');
    row('B2C tag', t.b2c === null ? 'not stated in the token' : t.b2c ? 'yes' : 'NO - this taxpayer cannot submit receipts');
  }
  const p = r.proxy;
  row('proxy', p.error ? `UNUSABLE - ${p.error}` : p.used ? `${p.address ?? ''} (from ${p.source ?? ''})` : `none (${p.reason ?? ''})`);
  if (r.service) {
    const sv = r.service;
    row(
      'service',
      sv.running
        ? `running (pid ${sv.pid}) since ${sv.startedAt}, ${sv.requests} logins${sv.nextAttemptAt ? `, next at ${sv.nextAttemptAt}` : ''}${sv.rejected ? ', CREDENTIALS REJECTED' : ''}`
        : `not running (last pid ${sv.pid}${sv.stoppedAt ? `, stopped at ${sv.stoppedAt}` : ''})`,
    );
  } else row('service', 'never ran');
  if (r.lastSuccessAt) row('last login', r.lastSuccessAt);
  if (r.lastError) row('last error', `${r.lastError.at} ${r.lastError.message}`);
  const offset = r.clockOffsetSeconds;
  if (offset !== undefined) row('clock', `${Math.abs(offset)} s ${offset < 0 ? 'ahead of' : 'behind'} the service's (within ${r.clockOffsetPrecisionSeconds ?? '?'} s)`);
  if (r.halTrace) {
    lines.push('hal trace:');
    for (const line of r.halTrace.length ? r.halTrace : ['(nothing read)']) lines.push(`  ${printable(line, 200)}`);
  }
  return `${lines.join('\n')}\n`;
}
