const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');
const REDACTED = '[redacted]';

/**
 * Every secret value this process has wrapped. Output paths pass through `redact`,
 * so a secret that slips into an error message from elsewhere (a server's
 * `error_description`, a library's message) is still never printed.
 */
const known = new Set<string>();

/** A secret string that prints as `[redacted]` however it is turned into text. */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
    if (value.length >= 4) known.add(value);
  }

  /** The value itself, for the one place that must send it. */
  reveal(): string {
    return this.#value;
  }

  get length(): number {
    return this.#value.length;
  }

  equals(other: Secret): boolean {
    return this.#value === other.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspectSymbol](): string {
    return REDACTED;
  }
}

/** Replaces every known secret value in `text` by `[redacted]`. */
export function redact(text: string): string {
  let out = text;
  const lower = text.toLowerCase();
  for (const value of known) {
    // Case-insensitive: a server may echo a value upper-cased.
    if (lower.includes(value.toLowerCase())) out = out.replace(new RegExp(value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gi'), REDACTED);
  }
  return out;
}

/** Marks a value that is not a `Secret` as never to be printed. */
export function registerSecretValue(value: string): void {
  if (value.length >= 4) known.add(value);
}

/** The access tokens marked so far, oldest first; a resident process renews for months. */
const tokens: string[] = [];
const TOKENS_KEPT = 8;

/** Marks an access token as never to be printed; only the last few are kept, older ones have expired. */
export function registerTokenValue(value: string): void {
  if (known.has(value)) return;
  registerSecretValue(value);
  tokens.push(value);
  if (tokens.length > TOKENS_KEPT) known.delete(tokens.shift() as string);
}
