/**
 * The co-processor's AT line protocol (SPEC "Serial co-processor protocol"): the
 * module sends `AT+SN?` or `AT+MODEL?`; the device answers `+SN: <value>` (the value
 * possibly in double quotes) then `OK`, or `ERROR` / `+CME ERROR: <n>`. Anything
 * else (boot banners, the echo of the command) is ignored. Bytes arrive split
 * anywhere, and lines end in CR, LF or CRLF.
 */
export type AtAnswer = { kind: 'value'; value: string } | { kind: 'error'; detail: string };

export interface AtReader {
  /** Feeds received bytes; returns the answer once it is complete. */
  push(bytes: Uint8Array): AtAnswer | undefined;
}

/** A line longer than this is noise, not protocol; it is dropped. */
const MAX_LINE = 512;

export function atCommand(name: string): string {
  return `AT+${name}?\r\n`;
}

/** Reads the answer to `AT+<name>?`; `onLine` sees every complete line, for diagnostics. */
export function createAtReader(name: string, onLine?: (line: string) => void): AtReader {
  const prefix = `+${name.toUpperCase()}:`;
  let partial = '';
  let value: string | undefined;
  let answer: AtAnswer | undefined;

  const line = (raw: string): AtAnswer | undefined => {
    const text = raw.trim();
    if (text === '') return undefined;
    onLine?.(text);
    const upper = text.toUpperCase();
    if (upper === 'ERROR') return { kind: 'error', detail: 'ERROR' };
    if (upper.startsWith('+CME ERROR:')) return { kind: 'error', detail: `+CME ERROR: ${text.slice(11).trim()}` };
    if (upper.startsWith(prefix)) {
      value = unquote(text.slice(prefix.length).trim());
      return undefined;
    }
    if (upper === 'OK') return value === undefined ? { kind: 'error', detail: `OK without a ${prefix} line` } : { kind: 'value', value };
    return undefined;
  };

  return {
    push(bytes) {
      if (answer) return answer;
      // latin1 keeps every byte as one character, so garbage cannot break the split.
      const parts = (partial + Buffer.from(bytes).toString('latin1')).split(/[\r\n]/);
      partial = parts.pop() ?? '';
      if (partial.length > MAX_LINE) partial = '';
      for (const part of parts) {
        answer = line(part);
        if (answer) return answer;
      }
      return undefined;
    },
  };
}

function unquote(value: string): string {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
}

/** A line made safe to show: control and non-ASCII bytes escaped, length bounded. */
export function printableLine(text: string): string {
  const shown = text.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return shown.length > 76 ? `${shown.slice(0, 73)}...` : shown;
}
