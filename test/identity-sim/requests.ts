// What the simulator accepts as an Authenticate POS request: the seed's headers,
// form fields and limits, checked in the order the real service is seen to check them.
import type { IncomingMessage } from 'node:http';
import type { SimTerminal } from './types';

export const BODY_LIMIT = 16 * 1024;
// Past this, an oversized body is no longer drained so that its 400 can be read; the connection is cut.
export const DRAIN_LIMIT = 1024 * 1024;
export const FORM_TYPE = 'application/x-www-form-urlencoded';

/** The seed's `String (N)` limits, in the order they are checked. */
export const LENGTH_LIMITS: ReadonlyArray<readonly ['header' | 'body', string, number]> = [
  ['header', 'posserial', 100],
  ['header', 'pososversion', 50],
  ['header', 'posmodelframework', 10],
  ['header', 'presharedkey', 200],
  ['body', 'grant_type', 20],
  ['body', 'client_id', 100],
  ['body', 'client_secret', 100],
  ['body', 'scope', 200],
];

export type Validation =
  | { ok: true; terminal: SimTerminal; scopes: string[] }
  | { ok: false; error: string; description?: string; status?: number };


export function isBlank(value: string | undefined): value is undefined {
  return value === undefined || value.trim() === '';
}

export function isFormContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  const mediaType = value.split(';', 1)[0] ?? '';
  return mediaType.trim().toLowerCase() === FORM_TYPE;
}

export function splitScopes(value: string): string[] {
  return [...new Set(value.split(' ').filter((scope) => scope !== ''))];
}

/**
 * Validates a token request in the order the service does, returning the first
 * failure. Descriptions name fields, never their values.
 */
export function validateTokenRequest(
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


export function lowerCaseHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

export function parseForm(body: string): Record<string, string> {
  const form: Record<string, string> = {};
  for (const [name, value] of new URLSearchParams(body)) {
    const previous = form[name];
    form[name] = previous === undefined ? value : `${previous},${value}`;
  }
  return form;
}

export interface ReadBody {
  text: string;
  /** The bytes as sent (empty when too large). */
  bytes: Buffer;
  /** Longer than the limit. */
  tooLarge: boolean;
  /** The client went away, or sent so much that draining it was given up. */
  cut: boolean;
}

export function readBody(req: IncomingMessage, limit = BODY_LIMIT): Promise<ReadBody> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (cut: boolean): void => {
      if (settled) return;
      settled = true;
      const tooLarge = size > limit;
      const bytes = tooLarge ? Buffer.alloc(0) : Buffer.concat(chunks);
      resolve({ text: bytes.toString('utf8'), bytes, tooLarge, cut });
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else if (size > limit + DRAIN_LIMIT) {
        req.pause();
        settle(true);
      }
    });
    req.on('end', () => settle(false));
    req.on('error', () => settle(true));
    req.on('close', () => settle(true));
  });
}

