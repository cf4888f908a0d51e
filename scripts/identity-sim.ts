import { createHash, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { STATUS_CODES, createServer } from 'node:http';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** A POS terminal registered with the simulated identity service. */
export interface SimTerminal {
  /** The `posserial` header the terminal must send. */
  serial: string;
  /** The `posmodelframework` header the terminal must send. */
  modelFramework: string;
  /** If set, `pososversion` must equal it; if unset, any non-blank value is accepted. */
  osVersion?: string;
  presharedKey: string;
  clientId: string;
  clientSecret: string;
  /**
   * The taxpayer's tags, put in the JWT claim `TaxProfTags` in this order; default
   * `['B2B', 'B2C']`; `null` leaves the claim out, as a token that does not say.
   */
  tags?: string[] | null;
  /** The taxpayer's registration number, the `TaxRin` claim; default a 9-digit number derived from `clientId`. */
  rin?: string;
  /** A blocked or expired system user: its logins are answered `unauthorized_client`. */
  blocked?: boolean;
  /** Scopes this client may request; default `['InvoicingAPI']`. */
  scopes?: string[];
  /** Token lifetime for this terminal, overriding the sim-wide lifetime. */
  lifetimeSeconds?: number;
}

/**
 * A misbehaviour of the service, consumed by exactly one token-endpoint request
 * (first in, first out) before that request is validated:
 * - `status`: answer with this status. Without `body`, a 429 carries the throttling
 *   JSON `{"error":"Too many requests","message":…,"code":429}`, a 5xx an HTML page as a
 *   load balancer would send, any other status a small JSON `{"error":…,"code":…}`.
 *   A `body` without `contentType` is labelled JSON if it parses as JSON, else HTML;
 * - `delay`: wait `ms`, then answer normally;
 * - `drop`: destroy the connection without any answer;
 * - `garbage`: 200, labelled JSON, with a body that is not JSON;
 * - `redirect`: 302 to `location`;
 * - `huge`: 200 with a body of `bytes` (default 1 MiB), streamed without a Content-Length.
 */
export type SimFault =
  | { kind: 'status'; status: number; retryAfter?: string; body?: string; contentType?: string }
  | { kind: 'delay'; ms: number }
  | { kind: 'drop' }
  | { kind: 'garbage' }
  | { kind: 'redirect'; location: string }
  | { kind: 'huge'; bytes?: number };

/** One request to the token endpoint, as received and answered. */
export interface SimRequestRecord {
  /** When it arrived, in ms from `options.now`. */
  at: number;
  method: string;
  path: string;
  /** Header names lower-cased; repeated headers joined with `, `. */
  headers: Record<string, string>;
  /** The urlencoded body (empty for another content type); a repeated parameter's values are joined with `,`, as IdentityServer reads them. */
  form: Record<string, string>;
  /** The status answered: 0 while the answer is pending (a `delay` fault) and for a dropped connection. */
  status: number;
  /** The OAuth error code answered, if any. */
  error?: string;
  /** The fault this request consumed, if any. */
  fault?: SimFault;
}

/** How to start the simulator; only `terminals` is required. */
export interface IdentitySimOptions {
  terminals: SimTerminal[];
  /** Default 3600: the seed says tokens are "configured to be 1 hour". */
  lifetimeSeconds?: number;
  /** Default `'127.0.0.1'`. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** The RSA private key that signs the tokens; default one key shared by every simulator in this process (see {@link generateSigningKey}). */
  signingKey?: KeyObject;
  /** Wall clock in ms, for `nbf`/`exp`, the `Date` header and `SimRequestRecord.at`; default `Date.now`. */
  now?: () => number;
  /** Status for `invalid_client`; default 400, as IdentityServer answers a client authenticated in the body. */
  invalidClientStatus?: 400 | 401;
  /** Called once each token-endpoint request is answered (or dropped), with its record. */
  onRequest?: (record: SimRequestRecord) => void;
}

/** A running simulator of the identity service. */
export interface IdentitySim {
  /** Base URL, e.g. `http://127.0.0.1:43123`, without a trailing slash. */
  readonly url: string;
  /** Token-endpoint requests, in the order they arrived. */
  readonly requests: SimRequestRecord[];
  /** The RSA public key that checks the tokens (RS256). */
  readonly publicKey: KeyObject;
  /** How many token-endpoint requests have arrived, answered or not. */
  tokenRequestCount(): number;
  /** Queues faults; each token-endpoint request consumes the oldest one, if any. */
  injectFaults(...faults: SimFault[]): void;
  /** Sets the lifetime of tokens issued from now on (seconds, 0 or more; a fraction makes `exp` a fraction past `nbf`). */
  setLifetime(seconds: number): void;
  /** Registers a terminal; throws if its `clientId` is already registered. */
  addTerminal(t: SimTerminal): void;
  /** Changes a registered terminal; throws if `clientId` is unknown. */
  updateTerminal(clientId: string, patch: Partial<SimTerminal>): void;
  /** Closes the server and every open connection, keep-alive ones included. */
  close(): Promise<void>;
}

const TOKEN_PATH = '/connect/token';
const DISCOVERY_PATH = '/.well-known/openid-configuration';
const JWKS_PATH = '/.well-known/openid-configuration/jwks';
const BODY_LIMIT = 16 * 1024;
// Past this, an oversized body is no longer drained so that its 400 can be read; the connection is cut.
const DRAIN_LIMIT = 1024 * 1024;
const JSON_TYPE = 'application/json; charset=UTF-8';
const HTML_TYPE = 'text/html; charset=UTF-8';
const FORM_TYPE = 'application/x-www-form-urlencoded';

/** The seed's `String (N)` limits, in the order they are checked. */
const LENGTH_LIMITS: ReadonlyArray<readonly ['header' | 'body', string, number]> = [
  ['header', 'posserial', 100],
  ['header', 'pososversion', 50],
  ['header', 'posmodelframework', 10],
  ['header', 'presharedkey', 200],
  ['body', 'grant_type', 20],
  ['body', 'client_id', 100],
  ['body', 'client_secret', 100],
  ['body', 'scope', 200],
];

type Validation =
  | { ok: true; terminal: SimTerminal; scopes: string[] }
  | { ok: false; error: string; description?: string; status?: number };

function base64url(data: Uint8Array | string): string {
  return Buffer.from(typeof data === 'string' ? Buffer.from(data, 'utf8') : data).toString('base64url');
}

function decodeBase64url(text: string): Uint8Array | undefined {
  // Buffer's decoder skips characters it does not know; a token must not verify with any of them.
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  return new Uint8Array(Buffer.from(text, 'base64url'));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJsonObject(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(bytes).toString('utf8'));
    return isRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Checks a token issued by the simulator against its public key.
 *
 * @returns the payload if the token is a well-formed RS256 JWT whose signature
 *   verifies, else `undefined` (never throws). Expiry is not checked.
 */
export function verifySimToken(token: string, publicKey: KeyObject): Record<string, unknown> | undefined {
  if (publicKey.asymmetricKeyType !== 'rsa') return undefined;
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const [encodedHeader = '', encodedPayload = '', encodedSignature = ''] = parts;
  const headerBytes = decodeBase64url(encodedHeader);
  const payloadBytes = decodeBase64url(encodedPayload);
  const signature = decodeBase64url(encodedSignature);
  if (!headerBytes || !payloadBytes || !signature || signature.length === 0) return undefined;
  const header = parseJsonObject(headerBytes);
  if (header?.['alg'] !== 'RS256') return undefined;
  const signed = Buffer.from(`${encodedHeader}.${encodedPayload}`, 'ascii');
  try {
    if (!verify('sha256', signed, publicKey, signature)) return undefined;
  } catch {
    return undefined;
  }
  return parseJsonObject(payloadBytes);
}

/** A new 2048-bit RSA signing key: about 0.2 s to make, so simulators share one unless a test needs its own. */
export function generateSigningKey(): KeyObject {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
}

let sharedKey: KeyObject | undefined;

/** The public half as a JWK, with its RFC 7638 thumbprint as `kid`. */
function rsaJwk(publicKey: KeyObject): { kty: 'RSA'; n: string; e: string; kid: string } {
  const { n, e } = publicKey.export({ format: 'jwk' }) as { n: string; e: string };
  const kid = createHash('sha256').update(JSON.stringify({ e, kty: 'RSA', n })).digest('base64url');
  return { kty: 'RSA', n, e, kid };
}

function signJwt(header: object, payload: object, privateKey: KeyObject): string {
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
  return `${input}.${base64url(sign('sha256', Buffer.from(input, 'ascii'), privateKey))}`;
}

/** A stable 9-digit registration number for a client, when the test does not give one. */
function defaultRin(clientId: string): string {
  return String(100_000_000 + (createHash('sha256').update(clientId).digest().readUInt32BE(0) % 900_000_000));
}

// IdentityServer treats a blank parameter as a missing one.
function isBlank(value: string | undefined): value is undefined {
  return value === undefined || value.trim() === '';
}

function isFormContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  const mediaType = value.split(';', 1)[0] ?? '';
  return mediaType.trim().toLowerCase() === FORM_TYPE;
}

function splitScopes(value: string): string[] {
  return [...new Set(value.split(' ').filter((scope) => scope !== ''))];
}

/**
 * Validates a token request in the order the service does, returning the first
 * failure. Descriptions name fields, never their values.
 */
function validateTokenRequest(
  headers: Record<string, string>,
  form: Record<string, string>,
  findTerminal: (clientId: string) => SimTerminal | undefined,
): Validation {
  const grantType = form['grant_type'];
  if (isBlank(grantType)) return { ok: false, error: 'invalid_request', description: 'grant_type is missing' };
  if (grantType !== 'client_credentials') return { ok: false, error: 'unsupported_grant_type' };
  for (const [where, name, max] of LENGTH_LIMITS) {
    const value = where === 'header' ? headers[name] : form[name];
    if (value !== undefined && value.length > max) {
      return { ok: false, error: 'invalid_request', description: `${name} is longer than ${max} characters` };
    }
  }
  const clientId = form['client_id'];
  const terminal = isBlank(clientId) ? undefined : findTerminal(clientId);
  if (!terminal) return { ok: false, error: 'invalid_client' };
  if (form['client_secret'] !== terminal.clientSecret) return { ok: false, error: 'invalid_clientsecret' };
  if (terminal.blocked) {
    return { ok: false, error: 'unauthorized_client', description: 'the system user is blocked or expired' };
  }
  if (headers['posserial'] !== terminal.serial) return { ok: false, error: 'invalid_posserial' };
  const osVersion = headers['pososversion'];
  if (isBlank(osVersion) || (terminal.osVersion !== undefined && osVersion !== terminal.osVersion)) {
    return { ok: false, error: 'invalid_pososversion' };
  }
  if (headers['posmodelframework'] !== terminal.modelFramework) return { ok: false, error: 'invalid_posmodelframework' };
  if (headers['presharedkey'] !== terminal.presharedKey) return { ok: false, error: 'invalid_presharedkey' };
  const allowed = terminal.scopes ?? ['InvoicingAPI'];
  const requestedScope = form['scope'];
  const requested = isBlank(requestedScope) ? [] : splitScopes(requestedScope);
  if (requested.some((scope) => !allowed.includes(scope))) return { ok: false, error: 'invalid_scope' };
  const scopes = requested.length > 0 ? requested : [...new Set(allowed)];
  if (scopes.length === 0) return { ok: false, error: 'invalid_scope' };
  return { ok: true, terminal, scopes };
}

function checkLifetime(seconds: number, what: string): void {
  // Fractions too (a hostile service's 1 ms tokens); the real service issues 3600.
  if (!Number.isFinite(seconds) || seconds < 0) throw new RangeError(`${what} must be a number of seconds, 0 or more`);
}

function checkFault(fault: SimFault): void {
  switch (fault.kind) {
    case 'status':
      if (!Number.isInteger(fault.status) || fault.status < 200 || fault.status > 599) {
        throw new RangeError('a status fault needs a status from 200 to 599');
      }
      return;
    case 'delay':
      if (!Number.isFinite(fault.ms) || fault.ms < 0) throw new RangeError('a delay fault needs ms of 0 or more');
      return;
    case 'huge':
      if (fault.bytes !== undefined && (!Number.isInteger(fault.bytes) || fault.bytes < 0)) {
        throw new RangeError('a huge fault needs bytes of 0 or more');
      }
      return;
    case 'drop':
    case 'garbage':
    case 'redirect':
      return;
  }
}

function copyTerminal(t: SimTerminal): SimTerminal {
  return {
    ...t,
    ...(t.tags ? { tags: [...t.tags] } : {}),
    ...(t.scopes ? { scopes: [...t.scopes] } : {}),
  };
}

function lowerCaseHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

function parseForm(body: string): Record<string, string> {
  const form: Record<string, string> = {};
  for (const [name, value] of new URLSearchParams(body)) {
    const previous = form[name];
    form[name] = previous === undefined ? value : `${previous},${value}`;
  }
  return form;
}

interface ReadBody {
  text: string;
  /** Longer than BODY_LIMIT. */
  tooLarge: boolean;
  /** The client went away, or sent so much that draining it was given up. */
  cut: boolean;
}

function readBody(req: IncomingMessage): Promise<ReadBody> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (cut: boolean): void => {
      if (settled) return;
      settled = true;
      const tooLarge = size > BODY_LIMIT;
      resolve({ text: tooLarge ? '' : Buffer.concat(chunks).toString('utf8'), tooLarge, cut });
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= BODY_LIMIT) chunks.push(chunk);
      else if (size > BODY_LIMIT + DRAIN_LIMIT) {
        req.pause();
        settle(true);
      }
    });
    req.on('end', () => settle(false));
    req.on('error', () => settle(true));
    req.on('close', () => settle(true));
  });
}

function defaultStatusBody(status: number): { body: string; contentType: string } {
  if (status === 429) {
    return {
      body: JSON.stringify({ error: 'Too many requests', message: 'Rate limit exceeded. Try again later.', code: 429 }),
      contentType: JSON_TYPE,
    };
  }
  const reason = STATUS_CODES[status] ?? 'Error';
  if (status >= 500) {
    const title = `${status} ${reason}`;
    return {
      body: `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n</body>\r\n</html>\r\n`,
      contentType: HTML_TYPE,
    };
  }
  return { body: JSON.stringify({ error: reason, code: status }), contentType: JSON_TYPE };
}

function guessContentType(body: string): string {
  try {
    JSON.parse(body);
    return JSON_TYPE;
  } catch {
    return HTML_TYPE;
  }
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Starts a local simulator of the eReceipt identity service (IdentityServer) with
 * the ETA's `POST /connect/token`, its discovery document and its JWKS.
 *
 * Every response carries a `Date` header from `options.now`. Tokens are EdDSA JWTs
 * signed by a key pair made at start; check them with {@link verifySimToken}.
 */
export async function startIdentitySim(options: IdentitySimOptions): Promise<IdentitySim> {
  const now = options.now ?? Date.now;
  const invalidClientStatus = options.invalidClientStatus ?? 400;
  let lifetime = options.lifetimeSeconds ?? 3600;
  checkLifetime(lifetime, 'lifetimeSeconds');
  const terminals = new Map<string, SimTerminal>();
  const addTerminal = (t: SimTerminal): void => {
    if (terminals.has(t.clientId)) throw new Error(`a terminal with client_id ${t.clientId} is already registered`);
    if (t.lifetimeSeconds !== undefined) checkLifetime(t.lifetimeSeconds, 'lifetimeSeconds');
    terminals.set(t.clientId, copyTerminal(t));
  };
  for (const t of options.terminals) addTerminal(t);

  const signingKey = options.signingKey ?? (sharedKey ??= generateSigningKey());
  const publicKey = createPublicKey(signingKey);
  const jwk = rsaJwk(publicKey);
  const requests: SimRequestRecord[] = [];
  let jti = 0;
  const faults: SimFault[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let url = '';

  const send = (res: ServerResponse, status: number, headers: OutgoingHttpHeaders, body = ''): void => {
    if (res.destroyed || res.headersSent) return;
    res.sendDate = false;
    res.writeHead(status, {
      Date: new Date(now()).toUTCString(),
      'Content-Length': Buffer.byteLength(body),
      ...headers,
    });
    res.end(body);
  };

  const sendJson = (res: ServerResponse, status: number, value: unknown, extra: OutgoingHttpHeaders = {}): void => {
    send(res, status, { 'Content-Type': JSON_TYPE, ...extra }, JSON.stringify(value));
  };

  const finish = (record: SimRequestRecord, status: number, error?: string): void => {
    record.status = status;
    if (error !== undefined) record.error = error;
    options.onRequest?.(record);
  };

  const issueToken = (res: ServerResponse, record: SimRequestRecord, terminal: SimTerminal, scopes: string[]): void => {
    const expiresIn = terminal.lifetimeSeconds ?? lifetime;
    const issuedAt = Math.floor(now() / 1000);
    const scope = scopes.join(' ');
    const rin = terminal.rin ?? defaultRin(terminal.clientId);
    const tags = terminal.tags === undefined ? ['B2B', 'B2C'] : terminal.tags;
    // The shape of the authority's real tokens (SPEC): no iat, no sub, scope as an
    // array, the taxpayer in TaxRin and TaxProfTags, flags as strings.
    const payload = {
      nbf: issuedAt,
      exp: issuedAt + expiresIn,
      iss: url,
      aud: 'InvoicingAPI',
      scope: scopes,
      client_id: terminal.clientId,
      name: `${rin}:${terminal.clientId}`,
      TaxRin: rin,
      TaxId: rin.slice(-5),
      ProfId: '0',
      IsSystem: 'true',
      IsTaxRepres: 'false',
      IsIntermediary: 'false',
      ...(tags === null ? {} : { TaxProfTags: [...tags] }),
      jti: createHash('sha256').update(`${terminal.clientId}:${issuedAt}:${(jti += 1)}:${url}`).digest('hex').slice(0, 32).toUpperCase(),
    };
    const accessToken = signJwt({ alg: 'RS256', typ: 'at+jwt', kid: jwk.kid }, payload, signingKey);
    sendJson(
      res,
      200,
      { access_token: accessToken, expires_in: expiresIn, token_type: 'Bearer', scope },
      { 'Cache-Control': 'no-store', Pragma: 'no-cache' },
    );
    finish(record, 200);
  };

  const answerOAuthError = (
    res: ServerResponse,
    record: SimRequestRecord,
    status: number,
    error: string,
    description?: string,
    extra: OutgoingHttpHeaders = {},
  ): void => {
    const body = description === undefined ? { error } : { error, error_description: description };
    sendJson(res, status, body, { 'Cache-Control': 'no-store', Pragma: 'no-cache', ...extra });
    finish(record, status, error);
  };

  const answerNormally = (req: IncomingMessage, res: ServerResponse, record: SimRequestRecord, body: ReadBody): void => {
    if (body.cut && !body.tooLarge) {
      finish(record, 0);
      return;
    }
    if (req.method !== 'POST') {
      send(res, 405, { Allow: 'POST' });
      finish(record, 405);
      return;
    }
    if (body.tooLarge) {
      answerOAuthError(res, record, 400, 'invalid_request', `the request body is larger than ${BODY_LIMIT} bytes`, {
        Connection: 'close',
      });
      return;
    }
    if (!isFormContentType(record.headers['content-type'])) {
      answerOAuthError(res, record, 400, 'invalid_request', `the content type must be ${FORM_TYPE}`);
      return;
    }
    const result = validateTokenRequest(record.headers, record.form, (clientId) => terminals.get(clientId));
    if (result.ok) {
      issueToken(res, record, result.terminal, result.scopes);
      return;
    }
    const status = result.error === 'invalid_client' ? invalidClientStatus : 400;
    answerOAuthError(res, record, status, result.error, result.description);
  };

  const answerHuge = (res: ServerResponse, bytes: number): void => {
    const head = '{"padding":"';
    const tail = '"}';
    const tailStart = bytes - tail.length;
    const slice = (start: number, end: number): string =>
      bytes < head.length + tail.length
        ? ' '.repeat(end - start)
        : head.slice(start, end) +
          'A'.repeat(Math.max(0, Math.min(end, tailStart) - Math.max(start, head.length))) +
          tail.slice(Math.max(0, start - tailStart), Math.max(0, end - tailStart));
    res.sendDate = false;
    res.writeHead(200, { Date: new Date(now()).toUTCString(), 'Content-Type': JSON_TYPE });
    let offset = 0;
    const write = (): void => {
      while (offset < bytes && !res.destroyed) {
        const end = Math.min(bytes, offset + 64 * 1024);
        const chunk = slice(offset, end);
        offset = end;
        if (!res.write(chunk)) {
          res.once('drain', write);
          return;
        }
      }
      if (!res.destroyed) res.end();
    };
    write();
  };

  const answerFault = (
    req: IncomingMessage,
    res: ServerResponse,
    record: SimRequestRecord,
    body: ReadBody,
    fault: SimFault,
  ): void => {
    switch (fault.kind) {
      case 'delay': {
        const timer = setTimeout(() => {
          timers.delete(timer);
          answerNormally(req, res, record, body);
        }, fault.ms);
        timers.add(timer);
        return;
      }
      case 'drop':
        req.socket.destroy();
        finish(record, 0);
        return;
      case 'garbage':
        send(res, 200, { 'Content-Type': JSON_TYPE }, '<html><body><h1>Welcome</h1><p>Please sign in to use this network.');
        finish(record, 200);
        return;
      case 'redirect':
        send(res, 302, { Location: fault.location });
        finish(record, 302);
        return;
      case 'huge':
        answerHuge(res, fault.bytes ?? 1024 * 1024);
        finish(record, 200);
        return;
      case 'status': {
        const fallback = defaultStatusBody(fault.status);
        const text = fault.body ?? fallback.body;
        const contentType = fault.contentType ?? (fault.body === undefined ? fallback.contentType : guessContentType(text));
        const noBody = fault.status === 204 || fault.status === 205 || fault.status === 304;
        send(
          res,
          fault.status,
          {
            ...(noBody ? {} : { 'Content-Type': contentType }),
            ...(fault.retryAfter === undefined ? {} : { 'Retry-After': fault.retryAfter }),
          },
          noBody ? '' : text,
        );
        finish(record, fault.status);
        return;
      }
    }
  };

  const handleToken = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const fault = faults.shift();
    const headers = lowerCaseHeaders(req);
    const record: SimRequestRecord = { at: now(), method: req.method ?? '', path, headers, form: {}, status: 0 };
    if (fault) record.fault = fault;
    requests.push(record);
    const body = await readBody(req);
    if (isFormContentType(headers['content-type'])) record.form = parseForm(body.text);
    if (fault) answerFault(req, res, record, body, fault);
    else answerNormally(req, res, record, body);
  };

  const handleMetadata = (req: IncomingMessage, res: ServerResponse, value: unknown): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD') send(res, 405, { Allow: 'GET, HEAD' });
    else sendJson(res, 200, value);
  };

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://sim').pathname;
    // IdentityServer's endpoint router compares paths ignoring case.
    const route = path.toLowerCase();
    if (route === TOKEN_PATH) {
      void handleToken(req, res, path);
    } else if (route === DISCOVERY_PATH) {
      handleMetadata(req, res, {
        issuer: url,
        jwks_uri: `${url}${JWKS_PATH}`,
        token_endpoint: `${url}${TOKEN_PATH}`,
        scopes_supported: [...new Set([...terminals.values()].flatMap((t) => t.scopes ?? ['InvoicingAPI']))],
        grant_types_supported: ['client_credentials'],
        token_endpoint_auth_methods_supported: ['client_secret_post'],
      });
    } else if (route === JWKS_PATH) {
      handleMetadata(req, res, {
        keys: [{ kty: 'RSA', use: 'sig', alg: 'RS256', kid: jwk.kid, n: jwk.n, e: jwk.e }],
      });
    } else {
      send(res, 404, {});
    }
  });

  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const status = error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    const date = new Date(now()).toUTCString();
    socket.end(`HTTP/1.1 ${status}\r\nDate: ${date}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  url = `http://${formatHost(host)}:${(server.address() as AddressInfo).port}`;

  let closing: Promise<void> | undefined;

  return {
    url,
    requests,
    publicKey,
    tokenRequestCount: () => requests.length,
    injectFaults(...added) {
      added.forEach(checkFault);
      faults.push(...added);
    },
    setLifetime(seconds) {
      checkLifetime(seconds, 'lifetime');
      lifetime = seconds;
    },
    addTerminal,
    updateTerminal(clientId, patch) {
      const current = terminals.get(clientId);
      if (!current) throw new Error(`no terminal with client_id ${clientId} is registered`);
      const next = copyTerminal({ ...current, ...patch });
      if (next.clientId !== clientId && terminals.has(next.clientId)) {
        throw new Error(`a terminal with client_id ${next.clientId} is already registered`);
      }
      if (next.lifetimeSeconds !== undefined) checkLifetime(next.lifetimeSeconds, 'lifetimeSeconds');
      terminals.delete(clientId);
      terminals.set(next.clientId, next);
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        // Node 18's server.close() waits for idle keep-alive connections to time out.
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

interface CliArgs {
  terminals: string;
  port: number;
  host: string;
  lifetime?: number;
}

const USAGE = 'usage: identity-sim --terminals FILE.json [--port N] [--host ADDRESS] [--lifetime SECONDS]';

function parseCliArgs(argv: string[]): CliArgs | 'help' {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') return 'help';
    const match = /^--(terminals|port|host|lifetime)(?:=(.*))?$/.exec(arg);
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
  return {
    terminals,
    port: whole('port', 65535) ?? 0,
    host: values.get('host') ?? '127.0.0.1',
    ...(lifetime === undefined ? {} : { lifetime }),
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
 * Runs the simulator from the command line: `--terminals FILE.json` (an array of
 * {@link SimTerminal}), `--port N`, `--host ADDRESS`, `--lifetime SECONDS`. Prints
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
    terminals = parseTerminals(JSON.parse(text));
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
      onRequest: (r) => {
        process.stderr.write(`${r.method} ${r.path} ${r.status}${r.error === undefined ? '' : ` ${r.error}`}\n`);
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
