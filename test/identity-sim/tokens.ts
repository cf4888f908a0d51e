// Token minting and checking for the identity-service simulator: RS256 JWTs of the
// real service's shape, their JWKS entry, and a verifier for tests.
import { createHash, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import type { SimTerminal } from './types';

export function base64url(data: Uint8Array | string): string {
  return Buffer.from(typeof data === 'string' ? Buffer.from(data, 'utf8') : data).toString('base64url');
}

export function decodeBase64url(text: string): Uint8Array | undefined {
  // Buffer's decoder skips characters it does not know; a token must not verify with any of them.
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  return new Uint8Array(Buffer.from(text, 'base64url'));
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function parseJsonObject(bytes: Uint8Array): Record<string, unknown> | undefined {
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


/** The public half as a JWK, with its RFC 7638 thumbprint as `kid`. */
export function rsaJwk(publicKey: KeyObject): { kty: 'RSA'; n: string; e: string; kid: string } {
  const { n, e } = publicKey.export({ format: 'jwk' }) as { n: string; e: string };
  const kid = createHash('sha256').update(JSON.stringify({ e, kty: 'RSA', n })).digest('base64url');
  return { kty: 'RSA', n, e, kid };
}

export function signJwt(header: object, payload: object, privateKey: KeyObject): string {
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
  return `${input}.${base64url(sign('sha256', Buffer.from(input, 'ascii'), privateKey))}`;
}

/** A stable 9-digit registration number for a client, when the test does not give one. */
export function defaultRin(clientId: string): string {
  return String(100_000_000 + (createHash('sha256').update(clientId).digest().readUInt32BE(0) % 900_000_000));
}

// IdentityServer treats a blank parameter as a missing one.

export interface MintOptions {
  terminal: SimTerminal;
  scopes: string[];
  /** `nbf`, seconds since the epoch. */
  issuedAt: number;
  lifetimeSeconds: number;
  /** `iss`: the simulator's own address. */
  issuer: string;
  /** Makes each token's `jti` unique. */
  serial: number;
  kid: string;
  key: KeyObject;
}

/**
 * An access token of the authority's real shape (SPEC): RS256, `typ` at+jwt, no
 * `iat` and no `sub`, `scope` as an array, the taxpayer in `TaxRin` and
 * `TaxProfTags` (left out when the terminal's tags are null), flags as strings.
 */
export function mintAccessToken(o: MintOptions): { token: string; jti: string } {
  const { terminal } = o;
  const rin = terminal.rin ?? defaultRin(terminal.clientId);
  const tags = terminal.tags === undefined ? ['B2B', 'B2C'] : terminal.tags;
  const payload = {
    nbf: o.issuedAt,
    exp: o.issuedAt + o.lifetimeSeconds,
    iss: o.issuer,
    aud: 'InvoicingAPI',
    scope: o.scopes,
    client_id: terminal.clientId,
    name: `${rin}:${terminal.clientId}`,
    TaxRin: rin,
    TaxId: rin.slice(-5),
    ProfId: '0',
    IsSystem: 'true',
    IsTaxRepres: 'false',
    IsIntermediary: 'false',
    ...(tags === null ? {} : { TaxProfTags: [...tags] }),
    jti: createHash('sha256').update(`${terminal.clientId}:${o.issuedAt}:${o.serial}:${o.issuer}`).digest('hex').slice(0, 32).toUpperCase(),
  };
  return { token: signJwt({ alg: 'RS256', typ: 'at+jwt', kid: o.kid }, payload, o.key), jti: payload.jti };
}
