import { dirname, join } from 'node:path';
import { writeFileAtomic } from './atomic-file';
import type { TokenSet } from './identity-client';
import { hasB2c, isPrintableWord } from './jwt';
import { clockOffsetAt, type HeldToken } from './token-manager';
import { readSmallFileSync } from './read-file';
import { registerTokenValue } from './secret';

/** Far more than a token file or the state file ever holds; a larger one is not ours. */
const MAX_FILE_BYTES = 64 * 1024;

/** The hand-off file the POS application reads (SPEC "Files it writes"). */
export interface TokenFile {
  access_token: string;
  token_type: 'Bearer';
  scope: string | null;
  /** ISO 8601 UTC. */
  expires_at: string;
  /** ISO 8601 UTC. */
  obtained_at: string;
  /** The taxpayer the token was issued to (`TaxRin`), when the token says: a receipt's issuer must be this taxpayer. */
  taxpayer_rin?: string;
  /** The taxpayer's tags (`TaxProfTags`), when the token lists them; without `B2C` it cannot submit receipts. */
  taxpayer_tags?: string[];
  /** Whether the taxpayer may submit receipts (its tags hold B2C); only when the token lists tags. */
  taxpayer_b2c?: boolean;
  /** The identity service's clock minus the local clock when the file was written, seconds to the tenth: add it to date a receipt by the service's clock. Only when the service sent a usable `Date`. */
  clock_offset_seconds?: number;
  /** The true offset is within this many seconds of `clock_offset_seconds`. */
  clock_offset_precision_seconds?: number;
}

function taxpayerFields(token: TokenSet): Pick<TokenFile, 'taxpayer_rin' | 'taxpayer_tags' | 'taxpayer_b2c'> {
  const { taxpayerRin, taxpayerTags } = token.claims;
  return {
    ...(taxpayerRin === undefined ? {} : { taxpayer_rin: taxpayerRin }),
    ...(taxpayerTags === undefined ? {} : { taxpayer_tags: [...taxpayerTags], taxpayer_b2c: hasB2c(taxpayerTags) as boolean }),
  };
}

/**
 * The token file for a token held by the resident service: expiry and obtained
 * time from the monotonic clock, so they stay true after the wall clock jumps. The
 * expiry is rounded down to the second: never later than the service honours it.
 */
export function tokenFileFromHeld(held: HeldToken, now: number, monotonic: number): TokenFile {
  const offset = clockOffsetAt(held, now, monotonic);
  return {
    access_token: held.token.accessToken,
    token_type: 'Bearer',
    scope: held.token.scope ?? null,
    expires_at: new Date(Math.floor((now + (held.expiresAtMono - monotonic)) / 1000) * 1000).toISOString(),
    obtained_at: new Date(now - (monotonic - held.obtainedAtMono)).toISOString(),
    ...taxpayerFields(held.token),
    ...(offset ? { clock_offset_seconds: offset.seconds, clock_offset_precision_seconds: offset.precisionSeconds } : {}),
  };
}

/** Replaces the token file atomically: mode 0600, in a folder made 0700. */
export async function writeTokenFile(path: string, file: TokenFile): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, what: 'token file' });
}

/** The token file, or undefined when there is none or it is not one we wrote. */
export async function readTokenFile(path: string): Promise<TokenFile | undefined> {
  let parsed: unknown;
  try {
    // Synchronous on purpose: this is the whole of `token` on its fast path, and fs/promises costs start-up time.
    parsed = JSON.parse(readSmallFileSync(path, MAX_FILE_BYTES).toString('utf8'));
  } catch {
    return undefined;
  }
  const f = parsed as Partial<TokenFile> | null;
  if (
    typeof f?.access_token !== 'string' ||
    f.token_type !== 'Bearer' ||
    typeof f.expires_at !== 'string' ||
    typeof f.obtained_at !== 'string' ||
    !Number.isFinite(Date.parse(f.expires_at))
  ) {
    return undefined;
  }
  registerTokenValue(f.access_token);
  const tags = Array.isArray(f.taxpayer_tags) && f.taxpayer_tags.every(isPrintableWord) ? f.taxpayer_tags : undefined;
  const number = (value: unknown) => typeof value === 'number' && Number.isFinite(value);
  return {
    access_token: f.access_token,
    token_type: 'Bearer',
    scope: typeof f.scope === 'string' ? f.scope : null,
    expires_at: f.expires_at,
    obtained_at: f.obtained_at,
    ...(isPrintableWord(f.taxpayer_rin) ? { taxpayer_rin: f.taxpayer_rin } : {}),
    ...(tags ? { taxpayer_tags: tags, taxpayer_b2c: hasB2c(tags) as boolean } : {}),
    ...(number(f.clock_offset_seconds) && number(f.clock_offset_precision_seconds) && (f.clock_offset_precision_seconds as number) > 0
      ? { clock_offset_seconds: f.clock_offset_seconds as number, clock_offset_precision_seconds: f.clock_offset_precision_seconds as number }
      : {}),
  };
}

/** Seconds the token file's token has left at `now` (ms); negative once expired. */
export function secondsLeft(file: TokenFile, now: number): number {
  return (Date.parse(file.expires_at) - now) / 1000;
}

/** What the last `boot`, `token` or `run` did, for `status`. Kept beside the token file. */
export interface ServiceState {
  last_success_at?: string;
  last_error?: { code: string; message: string; at: string };
  /** Server clock minus local clock, in seconds to the tenth, at the last answer that had a `Date`. */
  clock_offset_seconds?: number;
  /** How far `clock_offset_seconds` may be off, seconds. */
  clock_offset_precision_seconds?: number;
  /** The resident service, while `run` is up (and what it last did once it stopped). */
  service?: {
    pid: number;
    started_at: string;
    stopped_at?: string;
    next_attempt_at?: string;
    rejected: boolean;
    requests: number;
  };
}

export function stateFilePath(tokenFile: string): string {
  return join(dirname(tokenFile), 'state.json');
}

export async function readState(tokenFile: string): Promise<ServiceState> {
  try {
    const parsed: unknown = JSON.parse(readSmallFileSync(stateFilePath(tokenFile), MAX_FILE_BYTES).toString('utf8'));
    return typeof parsed === 'object' && parsed !== null ? (parsed as ServiceState) : {};
  } catch {
    return {};
  }
}

/** Best effort: `status` is worse off without it, but no command fails for it. */
export async function recordState(tokenFile: string, change: ServiceState, clear: { error?: boolean } = {}): Promise<void> {
  const state = { ...(await readState(tokenFile)), ...change };
  if (clear.error) delete state.last_error;
  await writeFileAtomic(stateFilePath(tokenFile), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600, what: 'state file' }).catch(() => {});
}
