import { HalError } from './errors';
import type { DeviceIdentity } from './types';

/** The limits the seed sets on the two values a HAL supplies. */
export const IDENTITY_LIMITS = { serial: 100, modelFramework: 10 } as const;

const PRINTABLE_ASCII = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/**
 * Checks what a driver read before it goes on the wire as an HTTP header: the
 * seed's length limits, printable ASCII, no leading or trailing blanks.
 */
export function validateIdentity(identity: DeviceIdentity, source: string): DeviceIdentity {
  check(identity.serial, 'serial number', IDENTITY_LIMITS.serial, source);
  check(identity.modelFramework, 'model framework', IDENTITY_LIMITS.modelFramework, source);
  return identity;
}

function check(value: string, what: string, max: number, source: string): void {
  if (value.length === 0) throw bad(`${source} has an empty ${what}`);
  if (value.length > max) throw bad(`${source} has a ${what} of ${value.length} characters (the limit is ${max})`);
  if (!PRINTABLE_ASCII.test(value)) throw bad(`${source} has a ${what} that is not printable ASCII`);
}

function bad(what: string): HalError {
  return new HalError('ERR_HAL_BAD_DATA', `${what}: check the terminal's identity data`);
}
