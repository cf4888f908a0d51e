import type { DeviceIdentity } from '../hal/types';
import { systemClocks } from './clock';
import type { Credentials } from './credentials';
import { EreceiptError, isEreceiptError, systemCode } from './errors';
import { decodeClaims, JWT_SHAPE, type TokenClaims } from './jwt';
import { printable } from './printable';
import { redact, registerTokenValue } from './secret';
import type { HttpResponse, HttpTransport, ProxiedError } from './transport';

/** Everything that goes into one Authenticate POS request. */
export interface TokenGrant {
  identityUrl: string;
  identity: DeviceIdentity;
  osVersion: string;
  credentials: Credentials;
  scope?: string;
}

/** A token the identity service issued. */
export interface TokenSet {
  accessToken: string;
  tokenType: 'Bearer';
  /** Lifetime in seconds, as the service stated it. */
  expiresIn: number;
  scope?: string;
  claims: TokenClaims;
  /** The server's `Date` header, ms since the epoch, when it sent one. */
  serverDate?: number;
  /**
   * The service's clock minus our monotonic clock, ms, when it sent a usable `Date`:
   * that header counts whole seconds and was written at some moment of the exchange,
   * so the true value is within `precisionMs` (half a second plus half the round trip).
   * On the monotonic clock, so a step of the wall clock, even during the request,
   * cannot skew it.
   */
  clock?: { serverMinusMonoMs: number; precisionMs: number };
}

export interface GrantOptions {
  transport: HttpTransport;
  /** Whole-request timeout, in ms. */
  timeoutMs: number;
  /** Aborts the request (a shutdown, the end of `boot --wait`). */
  signal?: AbortSignal;
  /** Wall clock, ms; for `Retry-After` given as a date. */
  now?: () => number;
  /** Monotonic clock, ms; times the exchange for the service's clock offset. */
  monotonic?: () => number;
}

const MAX_BODY_BYTES = 64 * 1024;
const MAX_RETRY_AFTER_MS = 60 * 60 * 1000;
/** The seed says tokens live one hour; a week is already far past anything plausible. */
const MAX_LIFETIME_SECONDS = 7 * 86_400;
/**
 * The shortest lifetime the terminal can use: renewals come at three quarters of a
 * token's life at the earliest, so a token this short is renewed at most 16 times a
 * minute. Anything shorter (1 ms, exp just past nbf) is a broken answer, retried with
 * backoff like any other, never a token held. The real service issues 3600 s.
 */
export const MIN_LIFETIME_SECONDS = 5;

export function tokenEndpoint(identityUrl: string): string {
  return `${identityUrl}/connect/token`;
}

/** Sends the Authenticate POS request and returns the HTTP answer, body read (at most 64 KiB). */
export async function tokenGrantRequest(grant: TokenGrant, options: GrantOptions): Promise<{ response: HttpResponse; body: string }> {
  const url = tokenEndpoint(grant.identityUrl);
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: grant.credentials.clientId,
    client_secret: grant.credentials.clientSecret.reveal(),
  });
  if (grant.scope) form.set('scope', grant.scope);

  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs);
  const onAbort = () => controller.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const response = await options.transport(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        'user-agent': 'ereceipt-auth',
        posserial: grant.identity.serial,
        pososversion: grant.osVersion,
        posmodelframework: grant.identity.modelFramework,
        presharedkey: grant.credentials.presharedKey.reveal(),
      },
      body: form.toString(),
      signal: controller.signal,
      maxBodyBytes: MAX_BODY_BYTES,
    });
    return { response, body: await response.text() };
  } catch (error) {
    if (isEreceiptError(error)) throw error;
    const aborted = controller.signal.aborted;
    throw networkError(url, error, aborted && !options.signal?.aborted ? options.timeoutMs : undefined);
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Turns the identity service's answer into a token, or into an error that says
 * whether to retry (`ERR_SERVICE_UNAVAILABLE`) or to fix the credentials
 * (`ERR_CREDENTIALS_REJECTED`).
 */
export function processTokenResponse(grant: TokenGrant, response: HttpResponse, body: string, now: () => number = Date.now): TokenSet {
  const status = response.status;
  const serverDate = parseHttpDate(response.headers.get('date'));
  const details = { httpStatus: status, ...(serverDate === undefined ? {} : { serverDate }) };
  const json = parseJsonObject(body);

  if (status === 200) {
    const problem = json ? tokenProblem(json) : 'the body is not JSON';
    if (problem || !json) {
      throw new EreceiptError('ERR_SERVICE_UNAVAILABLE', `identity service answered without a usable token (${problem})`, { ...details, remedy: 'try again later' });
    }
    const accessToken = json['access_token'] as string;
    registerTokenValue(accessToken);
    const claims = decodeClaims(accessToken) ?? {};
    const statedScope = typeof json['scope'] === 'string' ? json['scope'] : claims.scope;
    // Shown by boot and status and kept in the token file: one printable line.
    const scope = statedScope === undefined ? undefined : printable(statedScope, 200);
    // expires_in is the lifetime; the token's own exp - nbf (both the server's
    // clock, so immune to ours) cross-checks it and wins when shorter. Real tokens
    // carry no iat.
    const stated = json['expires_in'] as number;
    const inToken = claims.exp !== undefined && claims.nbf !== undefined ? claims.exp - claims.nbf : undefined;
    if (inToken !== undefined && inToken <= 0) {
      throw new EreceiptError('ERR_SERVICE_UNAVAILABLE', 'identity service answered without a usable token (its exp is not after its nbf)', { ...details, remedy: 'try again later' });
    }
    const expiresIn = inToken === undefined ? stated : Math.min(stated, inToken);
    if (expiresIn < MIN_LIFETIME_SECONDS) {
      throw new EreceiptError(
        'ERR_SERVICE_UNAVAILABLE',
        `identity service answered without a usable token (it lasts ${lifetimeText(expiresIn)} s, under the ${MIN_LIFETIME_SECONDS} s a terminal can use)`,
        { ...details, remedy: 'try again later' },
      );
    }
    return {
      accessToken,
      tokenType: 'Bearer',
      expiresIn,
      ...(scope ? { scope } : {}),
      claims,
      ...(serverDate === undefined ? {} : { serverDate }),
    };
  }

  const oauthError = typeof json?.['error'] === 'string' ? json['error'] : undefined;
  const description = typeof json?.['error_description'] === 'string' ? ` - ${clean(json['error_description'])}` : '';
  // Only an OAuth error answer is a verdict on the credentials; a 4xx page without one
  // comes from something in between (a proxy, a captive portal) and may pass.
  if ((status === 400 || status === 401 || status === 403) && oauthError) {
    const known = rejectionMessage(oauthError, grant);
    const message = known
      ? `${known[0]} (${oauthError}${description}): ${known[1]}`
      : `identity service refused the request (HTTP ${status}, ${clean(oauthError)}${description}): check identityUrl and re-run provisioning`;
    throw new EreceiptError('ERR_CREDENTIALS_REJECTED', message, { ...details, oauthError });
  }

  const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), serverDate ?? now());
  const wait = retryAfterMs === undefined ? '' : `, asks to wait ${Math.ceil(retryAfterMs / 1000)} s`;
  let message: string;
  let remedy: string;
  if (status === 429 || status === 503) [message, remedy] = [`identity service is busy (HTTP ${status}${wait})`, 'try again later'];
  else if (status === 408 || status >= 500) [message, remedy] = [`identity service is failing (HTTP ${status}${wait})`, 'try again later'];
  else if (status >= 300 && status < 400) {
    const location = response.headers.get('location');
    [message, remedy] = [`identity service redirected the request${location ? ` to ${clean(location)}` : ''}, which is never followed`, 'check identityUrl'];
  } else if (status >= 400 && status < 500) {
    [message, remedy] = [`identity service answered HTTP ${status} without an OAuth error at ${tokenEndpoint(grant.identityUrl)}`, 'check identityUrl and the network (a proxy?); try again later'];
  } else [message, remedy] = [`identity service answered HTTP ${status} at ${tokenEndpoint(grant.identityUrl)}`, 'check identityUrl'];
  throw new EreceiptError('ERR_SERVICE_UNAVAILABLE', message, { ...details, remedy, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) });
}

/** One Authenticate POS exchange: request, then the verdict on its answer. */
export async function requestToken(grant: TokenGrant, options: GrantOptions): Promise<TokenSet> {
  const now = options.now ?? Date.now;
  const monotonic = options.monotonic ?? systemClocks.monotonic;
  const startedAt = now();
  const startedMono = monotonic();
  const { response, body } = await tokenGrantRequest(grant, options);
  const token = processTokenResponse(grant, response, body, now);
  const answeredAt = now();
  const clock = measureClock(token, startedMono, monotonic());
  if (clock) token.clock = clock;
  // The lifetime counts from when the request left: a slow answer may bring a token
  // that is already (nearly) spent, which no caller may be handed as a success.
  const leftMs = startedAt + token.expiresIn * 1000 - answeredAt;
  if (leftMs < (MIN_LIFETIME_SECONDS / 2) * 1000) {
    throw new EreceiptError(
      'ERR_SERVICE_UNAVAILABLE',
      `identity service answered too slowly: the token had ${lifetimeText(Math.max(0, leftMs / 1000))} s of its life left when it arrived`,
      { httpStatus: response.status, remedy: 'try again later' },
    );
  }
  return token;
}

/**
 * The service's clock against our monotonic clock, from its `Date`: written between
 * `startedMono` and `answeredMono` and rounded down to the second. A `Date` that the
 * token's own `nbf` (the same service's clock, at issue) contradicts by a minute or
 * more is not the service's clock (a cache, a broken header): none then, rather than
 * a wrong one.
 */
export function measureClock(token: Pick<TokenSet, 'serverDate' | 'claims'>, startedMono: number, answeredMono: number): TokenSet['clock'] {
  const { serverDate } = token;
  const { nbf } = token.claims;
  if (serverDate === undefined || (nbf !== undefined && Math.abs(serverDate - nbf * 1000) >= 60_000)) return undefined;
  return { serverMinusMonoMs: serverDate + 500 - (startedMono + answeredMono) / 2, precisionMs: 500 + (answeredMono - startedMono) / 2 };
}

/** "0.001", "2.5", "30": a lifetime as the service stated it, short or not. */
function lifetimeText(seconds: number): string {
  return seconds >= 10 ? String(Math.floor(seconds)) : String(Number(seconds.toFixed(3)));
}

/** What was refused, and what to do about it, for each error code of the seed. */
function rejectionMessage(code: string, grant: TokenGrant): [string, string] | undefined {
  const clientId = `client_id ...${grant.credentials.clientId.slice(-4)}`;
  switch (code) {
    case 'invalid_posserial':
      return [`serial number ${grant.identity.serial} rejected by the identity service`, 'check that the terminal is registered with this serial number on the taxpayer portal'];
    case 'invalid_pososversion':
      return [`OS version "${grant.osVersion}" rejected by the identity service`, 'set osVersion in the configuration to the registered value'];
    case 'invalid_posmodelframework':
      return [`model framework ${grant.identity.modelFramework} rejected by the identity service`, "check the terminal's registration on the taxpayer portal"];
    case 'invalid_presharedkey':
      return ['presharedkey rejected by the identity service', 're-run provisioning'];
    case 'invalid_clientsecret':
      return ['client_secret rejected by the identity service', 're-run provisioning'];
    case 'invalid_client':
      return [`${clientId} rejected by the identity service`, 'check the client_id on the taxpayer portal and re-run provisioning'];
    case 'unauthorized_client':
      return [`${clientId} is not allowed to sign in`, 'the POS system user may be blocked or expired: check it on the taxpayer portal'];
    case 'invalid_scope':
      return [`scope "${grant.scope ?? ''}" rejected by the identity service`, 'fix or remove scope in the configuration'];
    case 'unsupported_grant_type':
      return ['identity service refused the client_credentials grant', 'check that identityUrl is the eReceipt identity service'];
    case 'invalid_request':
      return ['identity service refused the request as malformed', 'check identityUrl and osVersion in the configuration'];
    default:
      return undefined;
  }
}

function tokenProblem(json: Record<string, unknown>): string | undefined {
  const token = json['access_token'];
  if (typeof token !== 'string' || !JWT_SHAPE.test(token)) return 'access_token is not a JWT';
  if (typeof json['token_type'] !== 'string' || json['token_type'].toLowerCase() !== 'bearer') return 'token_type is not Bearer';
  const expiresIn = json['expires_in'];
  if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn) || expiresIn <= 0) return 'expires_in is not a positive number';
  if (expiresIn > MAX_LIFETIME_SECONDS) return `expires_in is over ${MAX_LIFETIME_SECONDS / 86_400} days`;
  return undefined;
}

function networkError(url: string, error: unknown, timedOutAfterMs: number | undefined): EreceiptError {
  // Through a proxy, the message says so: the technician looks at both.
  const proxy = (error as ProxiedError | null)?.proxy;
  const host = `${new URL(url).host}${proxy ? ` (through the proxy ${proxy})` : ''}`;
  if (timedOutAfterMs !== undefined) {
    return new EreceiptError('ERR_SERVICE_UNAVAILABLE', `identity service at ${host} did not answer within ${seconds(timedOutAfterMs)} s`, {
      remedy: 'check the network; try again later',
      cause: error,
    });
  }
  const e = error as { type?: string; code?: string; errno?: string; message?: string };
  if (e.type === 'max-size') {
    return new EreceiptError('ERR_SERVICE_UNAVAILABLE', `identity service at ${host} answered with a body over 64 KiB`, { cause: error, remedy: 'try again later' });
  }
  if (e.type === 'aborted' || e.code === 'ABORT_ERR') {
    return new EreceiptError('ERR_SERVICE_UNAVAILABLE', `request to the identity service at ${host} was cancelled`, { cause: error });
  }
  const code = e.code ?? e.errno ?? systemCode((error as { cause?: unknown }).cause) ?? 'error';
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO|HOSTNAME/i.test(code) || /certificate|ssl|tls/i.test(e.message ?? '')) {
    const legacy = /legacy renegotiation/i.test(e.message ?? '') ? ': set legacyServerConnect to true in the configuration' : ': check caFile in the configuration and the clock';
    return new EreceiptError('ERR_SERVICE_UNAVAILABLE', `TLS connection to the identity service at ${host} failed (${code})${legacy}`, { cause: error });
  }
  return new EreceiptError('ERR_SERVICE_UNAVAILABLE', `identity service at ${host} is unreachable (${code})`, { cause: error, remedy: 'check the network; try again later' });
}

/** "0.3", "2", "30": a timeout as a person set it, never rounded down to 0. */
function seconds(ms: number): string {
  return ms < 1000 ? (ms / 1000).toFixed(1) : String(Math.round(ms / 1000));
}

function parseJsonObject(body: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Server text, made safe for one line of a technician's console. */
function clean(text: string): string {
  const line = redact(text).replace(/[^\x20-\x7e]+/g, ' ').trim();
  return line.length > 120 ? `${line.slice(0, 117)}...` : line;
}

/** ms since the epoch, or undefined. */
export function parseHttpDate(value: string | null): number | undefined {
  if (!value) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

/** `Retry-After` as ms to wait: delta-seconds, or an HTTP date measured against the server's own clock. */
export function parseRetryAfter(value: string | null, reference: number): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  let ms: number | undefined;
  if (/^\d+$/.test(trimmed)) ms = Number(trimmed) * 1000;
  else {
    const at = parseHttpDate(trimmed);
    if (at !== undefined) ms = Math.max(0, at - reference);
  }
  return ms === undefined ? undefined : Math.min(ms, MAX_RETRY_AFTER_MS);
}
