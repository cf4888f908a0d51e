import { ERROR_BRAND, isBranded } from '../hal/errors';

export { systemCode } from '../hal/errors';

/**
 * Every failure the module knows about, by stable code. Callers branch on `code`,
 * never on the message; the message is the one line a technician reads.
 */
export const exitStatusOf = {
  ERR_USAGE: 64,
  ERR_HAL_BAD_DATA: 65,
  ERR_HAL_UNAVAILABLE: 69,
  ERR_INTERNAL: 70,
  ERR_FILE_WRITE: 73,
  ERR_FILE_READ: 74,
  ERR_SERVICE_UNAVAILABLE: 75,
  ERR_CREDENTIALS_REJECTED: 77,
  ERR_CONFIG: 78,
  ERR_NOT_PROVISIONED: 78,
  ERR_CREDENTIALS_UNREADABLE: 78,
  /** The technician pressed Ctrl-C: as a shell reports an interrupted command. */
  ERR_INTERRUPTED: 130,
  /** The in-process API's manager was closed: not an outage, nothing to retry. Never a command's status. */
  ERR_CLOSED: 70,
} as const;

export type ErrorCode = keyof typeof exitStatusOf;

export interface ErrorDetails {
  cause?: unknown;
  /** What to do about it ("try again later", "re-run provisioning"): joined to the message after a colon. */
  remedy?: string;
  /** Asking again soon cannot mend it (a refused permission, a driver missing from the install), whatever the code. */
  lasting?: boolean;
  /** How long the identity service asked us to wait (`Retry-After`), in ms. */
  retryAfterMs?: number;
  /** The OAuth `error` code the identity service answered with. */
  oauthError?: string;
  /** The HTTP status the identity service answered with. */
  httpStatus?: number;
  /** The server's `Date`, in ms since the epoch, when it sent one. */
  serverDate?: number;
}

/**
 * The module's error class; `code` says what kind of failure it is. The HAL's
 * errors (hal/errors.ts, the layer below) and those of the serial driver's own
 * bundle carry the same brand, so `instanceof EreceiptError` is true of them too.
 */
export class EreceiptError<C extends ErrorCode = ErrorCode> extends Error {
  static override [Symbol.hasInstance](value: unknown): boolean {
    return isBranded(value);
  }

  override readonly name = 'EreceiptError';
  readonly [ERROR_BRAND] = true;
  readonly code: C;
  /** What failed, without the remedy: for a line that says what happens next instead ("retrying in 4 s"). */
  readonly what: string;
  /** What to do about it, when the error says; `message` is `what: remedy`. */
  readonly remedy: string | undefined;
  /** Asking again soon cannot mend it, whatever the code says (src/failure-class.ts). */
  readonly lasting: boolean;
  readonly retryAfterMs: number | undefined;
  readonly oauthError: string | undefined;
  readonly httpStatus: number | undefined;
  readonly serverDate: number | undefined;

  constructor(code: C, message: string, details: ErrorDetails = {}) {
    super(details.remedy ? `${message}: ${details.remedy}` : message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.what = message;
    this.remedy = details.remedy;
    this.lasting = details.lasting ?? false;
    this.retryAfterMs = details.retryAfterMs;
    this.oauthError = details.oauthError;
    this.httpStatus = details.httpStatus;
    this.serverDate = details.serverDate;
  }

  get exitStatus(): number {
    return exitStatusOf[this.code];
  }
}

export function isEreceiptError(error: unknown): error is EreceiptError {
  return isBranded(error);
}

/**
 * True for the failures worth retrying soon: the service was unreachable or
 * failing, or the hardware was busy (src/failure-class.ts decides).
 */
export function isTransient(error: unknown): boolean {
  return isEreceiptError(error) && !error.lasting && (error.code === 'ERR_SERVICE_UNAVAILABLE' || error.code === 'ERR_HAL_UNAVAILABLE');
}

/** What failed, without its remedy (any error: a foreign one is its message). */
export function failureWhat(error: unknown): string {
  if (isEreceiptError(error)) return error.what ?? error.message;
  return error instanceof Error ? error.message : String(error);
}

