import { createAtReader, printableLine, type AtAnswer } from '../hal/at-protocol';

/** Feeds `text` in pieces of `size` bytes and returns the first answer. */
function feed(text: string, size = text.length, name = 'SN'): AtAnswer | undefined {
  const reader = createAtReader(name);
  const bytes = Buffer.from(text, 'latin1');
  for (let at = 0; at < bytes.length; at += size) {
    const answer = reader.push(bytes.subarray(at, at + size));
    if (answer) return answer;
  }
  return undefined;
}

describe('AT reader', () => {
  it.each([
    ['quoted, CRLF', '+SN: "POS-1"\r\nOK\r\n', 'POS-1'],
    ['unquoted, LF', '+SN: POS-1\nOK\n', 'POS-1'],
    ['CR only', '+SN:POS-1\rOK\r', 'POS-1'],
    ['banner and echo first', '\r\nCoProc v1.2\r\nready\r\nAT+SN?\r\n+SN: "POS-1"\r\n\r\nOK\r\n', 'POS-1'],
    ['another command\'s answer ignored', '+MODEL: "4"\r\n+SN: "POS-1"\r\nOK\r\n', 'POS-1'],
    ['lower case', '+sn: pos-1\r\nok\r\n', 'pos-1'],
    ['value with spaces kept', '+SN: "POS 1 A"\r\nOK\r\n', 'POS 1 A'],
  ])('%s', (_name, text, value) => {
    for (const size of [1, 2, 3, 7, text.length]) expect(feed(text, size)).toEqual({ kind: 'value', value });
  });

  it.each([
    ['ERROR', 'AT+SN?\r\nERROR\r\n', 'ERROR'],
    ['+CME ERROR', '+CME ERROR: 10\r\n', '+CME ERROR: 10'],
    ['OK without a value', 'OK\r\n', 'OK without a +SN: line'],
  ])('%s', (_name, text, detail) => {
    for (const size of [1, 5, text.length]) expect(feed(text, size)).toEqual({ kind: 'error', detail });
  });

  it('waits for OK after the value, and for the end of the line', () => {
    expect(feed('+SN: "POS-1"\r\n')).toBeUndefined();
    expect(feed('+SN: "POS-1"\r\nOK')).toBeUndefined();
  });

  it('drops noise without line ends instead of growing without bound', () => {
    const reader = createAtReader('SN');
    for (let i = 0; i < 100; i++) expect(reader.push(Buffer.alloc(100, 0x41))).toBeUndefined();
    expect(reader.push(Buffer.from('\r\n+SN: X\r\nOK\r\n'))).toEqual({ kind: 'value', value: 'X' });
    // Past the line limit the noise is thrown away, so an answer that follows it
    // without a line end of its own is still read (kept, it would be one long line).
    const capped = createAtReader('SN');
    expect(capped.push(Buffer.alloc(600, 0x41))).toBeUndefined();
    expect(capped.push(Buffer.from('+SN: X\r\nOK\r\n'))).toEqual({ kind: 'value', value: 'X' });
  });

  it('binary garbage is ignored, never an answer', () => {
    expect(feed('\x00\xff\xfe#@!\x07\r\n~~~\r\n')).toBeUndefined();
  });

  it('shows lines to the technician safely', () => {
    expect(printableLine('+SN: "A"\x00\xff')).toBe('+SN: "A"\\x00\\xff');
    expect(printableLine('x'.repeat(100))).toHaveLength(76);
  });
});
