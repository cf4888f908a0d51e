import { CREDENTIAL_LIMITS, type Credentials } from './credentials';
import { EreceiptError } from './errors';
import { Secret } from './secret';

type Field = keyof typeof CREDENTIAL_LIMITS;
const FIELDS = Object.keys(CREDENTIAL_LIMITS) as Field[];
const VALUE = /^[\x21-\x7e]+$/;
const MIN_SECRET_LENGTH = 8;

/**
 * Parses `provision --stdin` input: `client_id=…`, `client_secret=…`,
 * `presharedkey=…` lines, blank lines and `#` comments ignored. Messages name the
 * line and the key, never the value.
 */
export function parseCredentialLines(text: string): Credentials {
  const values = new Map<Field, string>();
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const at = line.indexOf('=');
    if (at <= 0) throw usage(`line ${index + 1} of the input is not key=value`);
    const key = line.slice(0, at).trim();
    if (!(FIELDS as string[]).includes(key)) {
      const shown = /^[A-Za-z_]{1,30}$/.test(key) ? `"${key}"` : '(not shown)';
      throw usage(`line ${index + 1} of the input has the unknown key ${shown}; the keys are ${FIELDS.join(', ')}`);
    }
    const field = key as Field;
    if (values.has(field)) throw usage(`${field} is given twice in the input`);
    values.set(field, checkValue(field, line.slice(at + 1).trim()));
  });
  const missing = FIELDS.filter((field) => !values.has(field));
  if (missing.length > 0) throw usage(`the input lacks ${missing.join(', ')}`);
  return {
    clientId: values.get('client_id') as string,
    clientSecret: new Secret(values.get('client_secret') as string),
    presharedKey: new Secret(values.get('presharedkey') as string),
  };
}

/** The seed's limits, and nothing a header or a form could mangle. */
export function checkValue(field: Field, value: string): string {
  if (value === '') throw usage(`${field} is empty`);
  if (value.length > CREDENTIAL_LIMITS[field]) throw usage(`${field} is ${value.length} characters long; the limit is ${CREDENTIAL_LIMITS[field]}`);
  // Shorter than this is no secret, and could not be told apart from ordinary text when output is scrubbed.
  if (field !== 'client_id' && value.length < MIN_SECRET_LENGTH) throw usage(`${field} is ${value.length} characters long, too short for a value from the taxpayer portal`);
  if (!VALUE.test(value)) throw usage(`${field} has spaces or characters other than printable ASCII`);
  return value;
}

function usage(message: string): EreceiptError {
  return new EreceiptError('ERR_USAGE', message, { remedy: 'nothing was saved' });
}
