// The simulator's receipts endpoint, `POST /api/v1/receiptsubmissions`, as far as a
// POS application's token handling meets it: the bearer token checked strictly
// (signature, nbf, exp, revocation), B2C, throttling and faults on demand, and a 202
// of the real answer's shape. It does not check a receipt's content beyond the two
// things the token decides: the issuer's RIN and a date not in the service's future.
import { randomBytes, type KeyObject } from 'node:crypto';
import { checkRate, checkRetryAfter } from './faults';
import { isRecord, verifySimToken } from './tokens';
import type { SimReceiptChances, SimReceiptFault, SimReceiptRecord } from './types';

export const RECEIPTS_PATH = '/api/v1/receiptsubmissions';
/** A submission holds many receipts; past this it is refused with 413. */
export const RECEIPTS_BODY_LIMIT = 1024 * 1024;
/** A token younger than this is never revoked by chance (see SimReceiptChances.revokeRate). */
export const REVOKE_GRACE_MS = 1000;

export function checkReceiptFault(fault: SimReceiptFault): void {
  if (!Number.isInteger(fault.status) || fault.status < 400 || fault.status > 599) throw new RangeError('a receipt fault needs a status from 400 to 599');
  if (fault.retryAfter !== undefined) checkRetryAfter(fault.retryAfter);
}

export function checkReceiptChances(chances: SimReceiptChances): void {
  if (chances.throttleRate !== undefined) checkRate(chances.throttleRate, 'throttleRate');
  if (chances.revokeRate !== undefined) checkRate(chances.revokeRate, 'revokeRate');
  if (chances.retryAfter !== undefined) checkRetryAfter(chances.retryAfter);
}

/** An answer for the server to send. */
export interface ReceiptAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface ReceiptsEndpoint {
  answer(record: SimReceiptRecord, authorization: string | undefined, contentType: string | undefined): ReceiptAnswer;
  /** Notes a token as issued, at `issuedAtMs` on the simulator's clock. */
  issued(tokenId: string, issuedAtMs: number): void;
  inject(faults: SimReceiptFault[]): void;
  setChances(chances: SimReceiptChances): void;
  revokeAll(): void;
  /** How many answers are queued. */
  queued(): number;
  /** How many tokens were revoked by an injected 401 or by chance (not by revokeAll). */
  revokedOneByOne(): number;
  chances(): Required<SimReceiptChances>;
}

const errorBody = (code: string, message: string) => JSON.stringify({ error: { code, message } });

export function createReceiptsEndpoint(options: { publicKey: KeyObject; now: () => number; random: () => number; chances?: SimReceiptChances }): ReceiptsEndpoint {
  const { publicKey, now, random } = options;
  const faults: SimReceiptFault[] = [];
  const issuedAt = new Map<string, number>();
  const revoked = new Set<string>();
  let oneByOne = 0;
  const revoke = (tokenId: string): void => {
    if (!revoked.has(tokenId)) oneByOne += 1;
    revoked.add(tokenId);
  };
  let chances: Required<SimReceiptChances> = { throttleRate: 0, revokeRate: 0, retryAfter: '1' };
  const setChances = (next: SimReceiptChances): void => {
    checkReceiptChances(next);
    chances = { ...chances, ...next };
  };
  if (options.chances) setChances(options.chances);

  const throttled = (retryAfter: string): ReceiptAnswer => ({
    status: 429,
    headers: { 'Retry-After': retryAfter },
    body: JSON.stringify({ error: 'Too many requests', message: 'Rate limit exceeded. Try again later.', code: 429 }),
  });
  // As ASP.NET's JWT bearer handler answers: no body, the reason in WWW-Authenticate.
  const unauthorized = (record: SimReceiptRecord, description?: string): ReceiptAnswer => {
    record.error = description ?? 'no bearer token';
    return {
      status: 401,
      headers: { 'WWW-Authenticate': description === undefined ? 'Bearer' : `Bearer error="invalid_token", error_description="${description}"` },
      body: '',
    };
  };

  return {
    answer(record, authorization, contentType) {
      // The gateway throttles before anything looks at the token.
      if (faults[0]?.status === 429) {
        const fault = faults.shift() as SimReceiptFault;
        record.error = 'throttled';
        return throttled(fault.retryAfter ?? chances.retryAfter);
      }
      if (chances.throttleRate > 0 && random() < chances.throttleRate) {
        record.error = 'throttled';
        return throttled(chances.retryAfter);
      }
      const match = /^Bearer ([^\s]+)$/i.exec(authorization ?? '');
      if (!match) return unauthorized(record);
      record.token = match[1] as string;
      const claims = verifySimToken(match[1] as string, publicKey);
      if (!claims) return unauthorized(record, 'The signature is invalid');
      const tokenId = typeof claims['jti'] === 'string' ? claims['jti'] : '';
      record.tokenId = tokenId;
      const seconds = now() / 1000;
      // Strict: none of the five minutes' leeway ASP.NET allows by default, so an application that passes here passes there.
      if (typeof claims['nbf'] !== 'number' || claims['nbf'] > seconds) return unauthorized(record, 'The token is not valid yet');
      if (typeof claims['exp'] !== 'number' || claims['exp'] <= seconds) return unauthorized(record, `The token expired at '${new Date(claims['exp'] as number * 1000).toISOString()}'`);
      if (revoked.has(tokenId)) return unauthorized(record, 'The token was revoked');
      const fault = faults.shift();
      if (fault?.status === 401) {
        revoke(tokenId);
        return unauthorized(record, 'The token was revoked');
      }
      if (fault) {
        record.error = `fault ${fault.status}`;
        return { status: fault.status, headers: { ...(fault.retryAfter === undefined ? {} : { 'Retry-After': fault.retryAfter }), 'Content-Type': 'application/json; charset=utf-8' }, body: errorBody('Fault', `injected ${fault.status}`) };
      }
      const born = issuedAt.get(tokenId);
      if (chances.revokeRate > 0 && born !== undefined && now() - born >= REVOKE_GRACE_MS && random() < chances.revokeRate) {
        revoke(tokenId);
        return unauthorized(record, 'The token was revoked');
      }
      const json = { 'Content-Type': 'application/json; charset=utf-8' };
      const tags = claims['TaxProfTags'];
      if (!Array.isArray(tags) || !tags.some((tag) => typeof tag === 'string' && tag.toUpperCase() === 'B2C')) {
        record.error = 'no B2C tag';
        return { status: 403, headers: json, body: errorBody('Forbidden', 'only taxpayers with the B2C tag may submit receipts') };
      }
      if (!/^application\/json\b/i.test(contentType ?? '')) {
        record.error = 'not JSON';
        return { status: 415, headers: json, body: errorBody('UnsupportedMediaType', 'the submission must be application/json') };
      }
      let submission: unknown;
      try {
        submission = JSON.parse(record.body.toString('utf8'));
      } catch {
        submission = undefined;
      }
      const receipts = isRecord(submission) ? submission['receipts'] : undefined;
      if (!Array.isArray(receipts) || receipts.length === 0) {
        record.error = 'no receipts';
        return { status: 400, headers: json, body: errorBody('BadStructure', 'the submission must hold a non-empty "receipts" array') };
      }
      const rin = claims['TaxRin'];
      const accepted: unknown[] = [];
      const rejected: unknown[] = [];
      for (const receipt of receipts) {
        const header = isRecord(receipt) && isRecord(receipt['header']) ? receipt['header'] : {};
        const seller = isRecord(receipt) && isRecord(receipt['seller']) ? receipt['seller'] : {};
        const id = { uuid: header['uuid'] ?? null, receiptNumber: header['receiptNumber'] ?? null };
        const issued = typeof header['dateTimeIssued'] === 'string' ? Date.parse(header['dateTimeIssued']) : Number.NaN;
        if (seller['rin'] !== undefined && seller['rin'] !== rin) rejected.push({ ...id, error: { code: 'IssuerMismatch', message: 'the seller is not the taxpayer the token was issued to' } });
        else if (issued > now()) rejected.push({ ...id, error: { code: 'DateTimeIssuedInFuture', message: "dateTimeIssued is after the service's clock" } });
        else accepted.push({ ...id, longId: randomBytes(12).toString('hex') });
      }
      return { status: 202, headers: json, body: JSON.stringify({ submissionId: randomBytes(13).toString('hex').toUpperCase(), acceptedDocuments: accepted, rejectedDocuments: rejected }) };
    },
    issued(tokenId, at) {
      issuedAt.set(tokenId, at);
    },
    inject(added) {
      added.forEach(checkReceiptFault);
      faults.push(...added);
    },
    setChances,
    revokeAll() {
      for (const id of issuedAt.keys()) revoked.add(id);
    },
    queued: () => faults.length,
    revokedOneByOne: () => oneByOne,
    chances: () => ({ ...chances }),
  };
}
