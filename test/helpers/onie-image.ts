import { referenceCrc32 as crc32 } from './reference-crc32';

/** Builds ONIE TlvInfo images for tests. The CRC comes from a bitwise reference, independently of hal/onie-tlv.ts. */
export interface ImageOptions {
  tlvs: [type: number, value: Uint8Array | string | number[]][];
  version?: number;
  signature?: string;
  /** Overrides the declared TLV-area length. */
  declaredLength?: number;
  /** Flips the stored CRC. */
  badCrc?: boolean;
  /** Leaves the CRC TLV out. */
  noCrc?: boolean;
  /** TLVs placed after a valid CRC TLV, inside the declared length. */
  afterCrc?: [type: number, value: Uint8Array | string | number[]][];
}

function encode(tlvs: ImageOptions['tlvs']): Buffer {
  const body: number[] = [];
  for (const [type, raw] of tlvs) {
    const value = typeof raw === 'string' ? Buffer.from(raw, 'latin1') : Buffer.from(raw);
    body.push(type, value.length, ...value);
  }
  return Buffer.from(body);
}

export function onieImage(options: ImageOptions): Buffer {
  const body = encode(options.tlvs);
  const after = encode(options.afterCrc ?? []);
  const crcLength = options.noCrc ? 0 : 6;
  const header = Buffer.alloc(11);
  header.write(options.signature ?? 'TlvInfo\0', 0, 'latin1');
  header[8] = options.version ?? 1;
  header.writeUInt16BE(options.declaredLength ?? body.length + crcLength + after.length, 9);
  const withoutCrc = Buffer.concat([header, body]);
  if (options.noCrc) return withoutCrc;
  const crcInput = Buffer.concat([withoutCrc, Buffer.from([0xfe, 4])]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE((crc32(crcInput) ^ (options.badCrc ? 1 : 0)) >>> 0);
  return Buffer.concat([crcInput, crc, after]);
}

/** A typical board: product name, serial, MAC, device version 3. */
export function goodImage(serial = 'POS-EE-000123', version = 3): Buffer {
  return onieImage({
    tlvs: [
      [0x21, 'ACME POS 5'],
      [0x23, serial],
      [0x24, [0x00, 0x11, 0x22, 0x33, 0x44, 0x55]],
      [0x26, [version]],
      [0x2b, 'ACME'],
    ],
  });
}
