// The simulator's fault plan: what a failing or hostile service answers, checked
// when a fault is injected, and the bodies it sends when a fault names none.
import { STATUS_CODES } from 'node:http';
import type { SimFault } from './types';

export const JSON_TYPE = 'application/json; charset=UTF-8';
export const HTML_TYPE = 'text/html; charset=UTF-8';

export function checkLifetime(seconds: number, what: string): void {
  // Fractions too (a hostile service's 1 ms tokens); the real service issues 3600.
  if (!Number.isFinite(seconds) || seconds < 0) throw new RangeError(`${what} must be a number of seconds, 0 or more`);
}

/** A value that can go into a header as it is: printable, one line (any text, so a test can send a malformed Retry-After). */
const headerSafe = (value: unknown): boolean => typeof value === 'string' && /^[\t\x20-\x7e]{0,1000}$/.test(value);

/** Checks a fault whole, as it may come from JSON: a fault that passes cannot make the server throw. */
export function checkFault(fault: SimFault): void {
  switch (fault.kind) {
    case 'status':
      if (!Number.isInteger(fault.status) || fault.status < 200 || fault.status > 599) {
        throw new RangeError('a status fault needs a status from 200 to 599');
      }
      if (fault.retryAfter !== undefined && !headerSafe(fault.retryAfter)) throw new RangeError('a status fault\'s retryAfter must be one printable line');
      if (fault.contentType !== undefined && !headerSafe(fault.contentType)) throw new RangeError('a status fault\'s contentType must be one printable line');
      if (fault.body !== undefined && typeof fault.body !== 'string') throw new RangeError('a status fault\'s body must be a string');
      return;
    case 'delay':
      // Past 2^31-1 ms Node's timers fire at once.
      if (!Number.isFinite(fault.ms) || fault.ms < 0 || fault.ms > 2 ** 31 - 1) throw new RangeError('a delay fault needs ms from 0 to 2147483647');
      return;
    case 'huge':
      if (fault.bytes !== undefined && (!Number.isInteger(fault.bytes) || fault.bytes < 0 || fault.bytes > 2 ** 30)) {
        throw new RangeError('a huge fault needs bytes from 0 to 1 GiB');
      }
      return;
    case 'redirect':
      if (!headerSafe(fault.location) || fault.location === '') throw new RangeError('a redirect fault needs a location, one printable line');
      return;
    case 'drop':
    case 'garbage':
      return;
    default:
      throw new RangeError('a fault needs a kind: status, delay, drop, garbage, redirect or huge');
  }
}


export function defaultStatusBody(status: number): { body: string; contentType: string } {
  if (status === 429) {
    return {
      body: JSON.stringify({ error: 'Too many requests', message: 'Rate limit exceeded. Try again later.', code: 429 }),
      contentType: JSON_TYPE,
    };
  }
  const reason = STATUS_CODES[status] ?? 'Error';
  if (status >= 500) {
    const title = `${status} ${reason}`;
    return {
      body: `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n</body>\r\n</html>\r\n`,
      contentType: HTML_TYPE,
    };
  }
  return { body: JSON.stringify({ error: reason, code: status }), contentType: JSON_TYPE };
}

export function guessContentType(body: string): string {
  try {
    JSON.parse(body);
    return JSON_TYPE;
  } catch {
    return HTML_TYPE;
  }
}


export function checkRate(rate: number, what: string): void {
  if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1)) throw new RangeError(`${what} must be a fraction from 0 to 1`);
}

/** Retry-After as HTTP has it: whole seconds, or a date. */
export function checkRetryAfter(value: string): void {
  if (typeof value !== 'string' || !(/^\d{1,10}$/.test(value) || (/^[\x20-\x7e]{1,64}$/.test(value) && Number.isFinite(Date.parse(value))))) {
    throw new RangeError('retryAfter must be whole seconds or an HTTP date');
  }
}
