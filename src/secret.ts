const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');
const REDACTED = '[redacted]';

/**
 * Every secret value this process has wrapped. Output paths pass through `redact`,
 * so a secret that slips into an error message from elsewhere (a server's
 * `error_description`, a library's message) is still never printed.
 */
const known = new Map<string, string[] | undefined>();

function remember(value: string): void {
  // Its echo forms are worked out the first time some text is redacted: most starts print nothing that needs it.
  if (value.length >= 4 && !known.has(value)) known.set(value, undefined);
}

/** A secret string that prints as `[redacted]` however it is turned into text. */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
    remember(value);
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

/** The shortest piece of a secret that is hidden on its own: a service may echo part of one. */
const MIN_ECHO = 8;

/** A secret as it may come back from a service: as is, or URL-encoded as in a form body. */
function echoForms(value: string): string[] {
  const forms = new Set([value, encodeURIComponent(value), new URLSearchParams({ v: value }).toString().slice(2)]);
  return [...forms].map((form) => form.toLowerCase());
}

/**
 * Replaces every known secret in `text` by `[redacted]`: as is, URL-encoded, in any
 * case, and any piece of it of 8 characters or more (a server that echoes most of a
 * key, or cuts it, must not get it printed).
 */
export function redact(text: string): string {
  if (known.size === 0 || text.length < 4) return text;
  const lower = text.toLowerCase();
  const hidden = new Uint8Array(text.length);
  let any = false;
  const hide = (piece: string) => {
    for (let at = lower.indexOf(piece); at !== -1; at = lower.indexOf(piece, at + 1)) {
      hidden.fill(1, at, at + piece.length);
      any = true;
    }
  };
  // Every 8-character piece of the text, so that each piece of a secret is one look-up.
  const pieces = new Set<string>();
  for (let i = 0; i + MIN_ECHO <= lower.length; i++) pieces.add(lower.slice(i, i + MIN_ECHO));
  for (const [value, cached] of known) {
    const forms = cached ?? echoForms(value);
    if (!cached) known.set(value, forms);
    for (const form of forms) {
      if (form.length <= MIN_ECHO) hide(form);
      else {
        for (let i = 0; i + MIN_ECHO <= form.length; i++) {
          const piece = form.slice(i, i + MIN_ECHO);
          if (pieces.has(piece)) hide(piece);
        }
      }
    }
  }
  if (!any) return text;
  let out = '';
  for (let i = 0; i < text.length; i++) {
    if (!hidden[i]) out += text[i];
    else if (i === 0 || !hidden[i - 1]) out += REDACTED;
  }
  return out;
}

/** Marks a value that is not a `Secret` as never to be printed. */
export function registerSecretValue(value: string): void {
  remember(value);
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
