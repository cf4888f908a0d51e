/**
 * The HAL's failures: the bottom layer, which the drivers throw and the product
 * imports (nothing here knows the product). A HAL error is one of the module's
 * errors (src/errors.ts): the same brand, so `isEreceiptError` and `instanceof
 * EreceiptError` know it, and the same fields, so the CLI prints it and picks its
 * exit status like any other.
 */

/** Marks the module's errors across bundles and layers (the serial driver is a file of its own). */
export const ERROR_BRAND = Symbol.for('ereceipt-auth.error');

/**
 * - `ERR_HAL_UNAVAILABLE`: no device at the configured path, or it cannot be used now (exit 69);
 * - `ERR_HAL_BAD_DATA`: the device answered, but not with a valid identity (exit 65).
 */
export type HalErrorCode = 'ERR_HAL_UNAVAILABLE' | 'ERR_HAL_BAD_DATA';

export interface HalErrorDetails {
  cause?: unknown;
  /** What to do about it: joined to the message after a colon. */
  remedy?: string;
  /** Asking again soon cannot mend it (a refused permission), though the code alone would say it might. */
  lasting?: boolean;
}

export class HalError extends Error {
  override readonly name = 'EreceiptError';
  readonly [ERROR_BRAND] = true;
  readonly code: HalErrorCode;
  /** What failed, without the remedy. */
  readonly what: string;
  readonly remedy: string | undefined;
  readonly lasting: boolean;

  constructor(code: HalErrorCode, message: string, details: HalErrorDetails = {}) {
    super(details.remedy ? `${message}: ${details.remedy}` : message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.what = message;
    this.remedy = details.remedy;
    this.lasting = details.lasting ?? false;
  }

  get exitStatus(): number {
    return this.code === 'ERR_HAL_BAD_DATA' ? 65 : 69;
  }
}

/** Whether `error` is one of the module's errors, from any bundle or layer. */
export function isBranded(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { [ERROR_BRAND]?: boolean })[ERROR_BRAND] === true;
}

/** The system error code (`ENOENT`, `EACCES`, …) of a failed file or socket call. */
export function systemCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
