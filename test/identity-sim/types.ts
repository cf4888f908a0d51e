// The identity-service simulator's public types.
import type { KeyObject } from 'node:crypto';

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

/**
 * What `POST /api/v1/receiptsubmissions` answers next, consumed by one submission
 * (first in, first out) once its token has been checked... except a 429, which the
 * gateway answers before looking at the token:
 * - `429`: throttled, with `Retry-After` (default `"1"`) and the throttling JSON;
 * - `401`: the presented token is revoked now: this and every later use of it is 401;
 * - any other status from 400 to 599: that status with a small JSON body.
 */
export interface SimReceiptFault {
  status: number;
  retryAfter?: string;
}

/** Chance misbehaviour of the receipts endpoint, drawn for every submission. */
export interface SimReceiptChances {
  /** Fraction of submissions answered 429 (0 to 1); default 0. */
  throttleRate?: number;
  /** `Retry-After` of those 429s, in seconds; default `"1"`. */
  retryAfter?: string;
  /**
   * Fraction of submissions whose token is revoked at that moment (0 to 1); default 0.
   * A token in its first second is never drawn, so a client that logs in again and
   * replays at once is never refused twice by chance.
   */
  revokeRate?: number;
}

/** One submission to the receipts endpoint, as received and answered. */
export interface SimReceiptRecord {
  /** When it arrived, in ms from `options.now`. */
  at: number;
  /** The status answered. */
  status: number;
  /** Why it was refused (401, 403, 400, a fault), if it was. */
  error?: string;
  /** The bearer token presented, if any (kept for the latest 1,000 submissions). */
  token?: string;
  /** The `jti` of the token presented, when it verified. */
  tokenId?: string;
  /** The body as received (kept for the latest 1,000 submissions; empty before them). */
  body: Buffer;
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
  /** Serve HTTPS with this key and certificate (PEM) instead of plain HTTP. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** Serve the control endpoint `/_sim/control` (README, "The simulator as a test double"); default false. */
  control?: boolean;
  /** Chance misbehaviour of the receipts endpoint from the start. */
  receipts?: SimReceiptChances;
  /** The chance the receipts endpoint draws from, 0 to 1; default `Math.random`. */
  random?: () => number;
  /** Called once each submission to the receipts endpoint is answered. */
  onReceipt?: (record: SimReceiptRecord) => void;
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
  /** Submissions to the receipts endpoint, in the order they arrived. */
  readonly receipts: SimReceiptRecord[];
  /** Queues answers for the receipts endpoint (see {@link SimReceiptFault}). */
  injectReceiptFaults(...faults: SimReceiptFault[]): void;
  /** Sets the receipts endpoint's chance misbehaviour; what is not given is left as it was. */
  setReceiptChances(chances: SimReceiptChances): void;
  /** Revokes every token issued so far: the receipts endpoint answers 401 to each. */
  revokeTokens(): void;
  /** Closes the server and every open connection, keep-alive ones included. */
  close(): Promise<void>;
}

