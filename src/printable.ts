/** The longest line the module writes about one event; anything longer is cut. */
const MAX_LINE = 1000;

/**
 * Text made safe for one line of a technician's console or a log: every character
 * outside printable ASCII (ESC, CR, LF, DEL, the C1 controls, a byte-order mark, a
 * zero-width or bidi control…) is shown as a visible `\u{…}` escape rather than acted
 * on or hidden, and the line is cut at `max` characters.
 */
export function printable(text: string, max = MAX_LINE): string {
  const escaped = text.replace(/[^\x20-\x7e]/gu, (c) => `\\u{${(c.codePointAt(0) as number).toString(16)}}`);
  return escaped.length > max ? `${escaped.slice(0, max - 3)}...` : escaped;
}
