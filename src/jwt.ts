/**
 * What the module reads from an access token's payload. The signature is the API's
 * business, not ours. The claim names are the ones the authority's real tokens carry
 * (SPEC "What the real access tokens look like"): no `iat`, the taxpayer in `TaxRin`,
 * its tags in `TaxProfTags`.
 */
export interface TokenClaims {
  /** `exp`, in seconds since the epoch. */
  exp?: number;
  /** `nbf`, in seconds since the epoch. */
  nbf?: number;
  scope?: string;
  /** `TaxRin`: the registration number of the taxpayer the token was issued to. */
  taxpayerRin?: string;
  /** `TaxProfTags`, as a set (no duplicates, the service's order), when the token carries that claim. */
  taxpayerTags?: string[];
}

/** The JWS compact form: three base64url parts, the last one possibly empty. */
export const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** A RIN or a tag as it may reach a console, a header-like file field, a log line: no spaces, no control characters. */
const PRINTABLE_WORD = /^[\x21-\x7e]{1,64}$/;
export const isPrintableWord = (value: unknown): value is string => typeof value === 'string' && PRINTABLE_WORD.test(value);
/** More tags than any taxpayer has; the rest is not kept. */
const MAX_TAGS = 32;

/** Decodes (does not verify) the payload of a JWT; `undefined` when it is not one. */
export function decodeClaims(token: string): TokenClaims | undefined {
  if (!JWT_SHAPE.test(token)) return undefined;
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return undefined;
  const p = payload as Record<string, unknown>;
  const claims: TokenClaims = {};
  const time = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);
  const exp = time(p['exp']);
  if (exp !== undefined) claims.exp = exp;
  const nbf = time(p['nbf']);
  if (nbf !== undefined) claims.nbf = nbf;
  if (typeof p['scope'] === 'string') claims.scope = p['scope'];
  else if (Array.isArray(p['scope'])) claims.scope = p['scope'].filter((s) => typeof s === 'string').join(' ');
  const rin = typeof p['TaxRin'] === 'number' && Number.isSafeInteger(p['TaxRin']) ? String(p['TaxRin']) : p['TaxRin'];
  if (isPrintableWord(rin)) claims.taxpayerRin = rin;
  const tags = readTags(p['TaxProfTags']);
  if (tags) claims.taxpayerTags = tags;
  return claims;
}

/**
 * `TaxProfTags` as a set. The samples carry an array; IdentityServer writes a claim
 * with a single value as a plain string, so a string is read as that one tag.
 */
function readTags(value: unknown): string[] | undefined {
  const list = typeof value === 'string' ? [value] : Array.isArray(value) ? value : undefined;
  if (!list) return undefined;
  const tags = new Set<string>();
  for (const tag of list) if (isPrintableWord(tag) && tags.size < MAX_TAGS) tags.add(tag);
  return [...tags];
}

/**
 * Whether the taxpayer may submit receipts, as far as the token says: true or false
 * when it lists the taxpayer's tags, undefined when it does not say.
 */
export function hasB2c(tags: readonly string[] | undefined): boolean | undefined {
  return tags === undefined ? undefined : tags.some((tag) => tag.toUpperCase() === 'B2C');
}

/** The warning `boot`, `token` and `run` give when the token says the taxpayer lacks B2C. */
export const NO_B2C_WARNING = 'the token does not carry the B2C tag, so this taxpayer cannot submit receipts: ask for the B2C tag on the taxpayer portal';
