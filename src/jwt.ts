/** What the module reads from an access token's payload. The signature is the API's business, not ours. */
export interface TokenClaims {
  /** `exp`, in seconds since the epoch. */
  exp?: number;
  /** `iat`, in seconds since the epoch. */
  iat?: number;
  scope?: string;
  /** The taxpayer's tags (B2B, B2C), when the token carries a claim that lists them. */
  tags?: string[];
}

const TAG_CLAIMS = ['taxpayer_tags', 'tags', 'TaxpayerTags', 'taxpayerTags'];

/** The JWS compact form: three base64url parts, the last one possibly empty. */
export const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** Decodes (does not verify) the payload of a JWT; `undefined` when it is not one. */
export function decodeClaims(token: string): TokenClaims | undefined {
  if (!JWT_SHAPE.test(token)) return undefined;
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof payload !== 'object' || payload === null) return undefined;
  const p = payload as Record<string, unknown>;
  const claims: TokenClaims = {};
  if (typeof p['exp'] === 'number') claims.exp = p['exp'];
  if (typeof p['iat'] === 'number') claims.iat = p['iat'];
  if (typeof p['scope'] === 'string') claims.scope = p['scope'];
  else if (Array.isArray(p['scope'])) claims.scope = p['scope'].filter((s) => typeof s === 'string').join(' ');
  for (const name of TAG_CLAIMS) {
    const value = p[name];
    if (typeof value === 'string') claims.tags = value.split(/[\s,]+/).filter(Boolean);
    else if (Array.isArray(value)) claims.tags = value.filter((t): t is string => typeof t === 'string');
    if (claims.tags) break;
  }
  return claims;
}

/** True when the token lists the taxpayer's tags and B2C is not among them (it cannot submit receipts). */
export function lacksB2c(claims: TokenClaims | undefined): boolean {
  return claims?.tags !== undefined && !claims.tags.some((tag) => tag.toUpperCase() === 'B2C');
}
