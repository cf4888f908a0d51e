import { HalError } from './errors';

/**
 * The ONIE TlvInfo board-identity format (ONIE hardware spec, U-Boot tlv_eeprom,
 * Linux nvmem `onie,tlv-layout`): "TlvInfo\0", version 0x01, a 2-byte big-endian
 * length of the TLVs that follow, then the TLVs; the last one is CRC-32 (0xFE, 4
 * bytes), over everything from the header through the CRC TLV's type and length.
 */
export const TLV_HEADER_LENGTH = 11;
export const TLV_MAX_TOTAL = 2048;
export const TLV_CRC = 0xfe;
export const TLV_SERIAL_NUMBER = 0x23;
export const TLV_DEVICE_VERSION = 0x26;
const SIGNATURE = 'TlvInfo\0';

export interface Tlv {
  type: number;
  value: Uint8Array;
}

/** Names of the standard TLV types, for the technician's diagnostic listing. */
export const TLV_NAMES: Record<number, string> = {
  0x21: 'Product Name',
  0x22: 'Part Number',
  0x23: 'Serial Number',
  0x24: 'Base MAC Address',
  0x25: 'Manufacture Date',
  0x26: 'Device Version',
  0x27: 'Label Revision',
  0x28: 'Platform Name',
  0x29: 'ONIE Version',
  0x2a: 'MAC Addresses',
  0x2b: 'Manufacturer',
  0x2c: 'Country Code',
  0x2d: 'Vendor Name',
  0x2e: 'Diag Version',
  0x2f: 'Service Tag',
  0xfd: 'Vendor Extension',
  0xfe: 'CRC-32',
};

/**
 * How many bytes the whole structure takes, from its header alone, or a coded
 * error when the header is not a TlvInfo header. Lets the driver read no more than
 * it needs.
 */
export function tlvTotalLength(header: Uint8Array, source: string): number {
  if (header.length < TLV_HEADER_LENGTH) throw bad(source, `is truncated: ${header.length} bytes, less than the 11-byte header`);
  if (header.subarray(0, TLV_HEADER_LENGTH).every((b) => b === 0xff)) throw bad(source, 'is blank (all 0xFF): the board identity was never programmed');
  if (String.fromCharCode(...header.subarray(0, 8)) !== SIGNATURE) throw bad(source, 'does not start with the TlvInfo header');
  if (header[8] !== 0x01) throw bad(source, `has TlvInfo version ${header[8]}, not 1`);
  const total = TLV_HEADER_LENGTH + (((header[9] as number) << 8) | (header[10] as number));
  if (total > TLV_MAX_TOTAL) throw bad(source, `declares ${total} bytes, more than the 2048 a TlvInfo structure may have`);
  return total;
}

/** Parses and checks a whole TlvInfo image: header, TLV walk, CRC. Every failure is `ERR_HAL_BAD_DATA`. */
export function parseTlvInfo(image: Uint8Array, source: string): Tlv[] {
  const total = tlvTotalLength(image, source);
  if (image.length < total) throw bad(source, `is truncated: it declares ${total} bytes but holds ${image.length}`);
  const tlvs: Tlv[] = [];
  let at = TLV_HEADER_LENGTH;
  while (at < total) {
    if (at + 2 > total) throw bad(source, `has a TLV header running past the declared end at byte ${at}`);
    const type = image[at] as number;
    const length = image[at + 1] as number;
    if (at + 2 + length > total) throw bad(source, `has TLV 0x${hex(type)} running past the declared end`);
    const value = image.subarray(at + 2, at + 2 + length);
    if (type === TLV_CRC) {
      if (length !== 4) throw bad(source, `has a CRC-32 TLV of ${length} bytes, not 4`);
      if (at + 6 !== total) throw bad(source, 'has TLVs after the CRC-32 TLV, which must be last');
      const stored = (((value[0] as number) << 24) | ((value[1] as number) << 16) | ((value[2] as number) << 8) | (value[3] as number)) >>> 0;
      const computed = crc32(image.subarray(0, at + 2));
      if (stored !== computed) throw bad(source, `fails its CRC-32 check (stored 0x${stored.toString(16).padStart(8, '0')}, computed 0x${computed.toString(16).padStart(8, '0')})`);
      return tlvs;
    }
    tlvs.push({ type, value });
    at += 2 + length;
  }
  throw bad(source, 'has no CRC-32 TLV');
}

let table: Uint32Array | undefined;

/** IEEE 802.3 / zlib CRC-32. Node 18 has no zlib.crc32, so it is computed here. */
export function crc32(bytes: Uint8Array): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const byte of bytes) crc = (table[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** One line per TLV for the technician, values shown as text when printable, else hex; bounded. */
export function describeTlvs(tlvs: Tlv[]): string[] {
  return tlvs.map(({ type, value }) => {
    const name = TLV_NAMES[type] ?? 'unknown';
    const printable = value.length > 0 && value.every((b) => b >= 0x20 && b < 0x7f);
    const shown = printable ? JSON.stringify(String.fromCharCode(...value)) : [...value].map(hex).join(' ');
    const line = `0x${hex(type)} ${name} (${value.length} bytes): ${shown}`;
    return line.length > 78 ? `${line.slice(0, 75)}...` : line;
  });
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

function bad(source: string, what: string): HalError {
  return new HalError('ERR_HAL_BAD_DATA', `EEPROM ${source} ${what}: check or reprogram the board identity EEPROM`);
}
