import { zlibCrc32 as crc32 } from './zlib-crc32';

/** Builds ONIE TlvInfo images for tests. The CRC comes from node:zlib, independently of hal/onie-tlv.ts. */
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
}

export function onieImage(options: ImageOptions): Buffer {
  const body: number[] = [];
  for (const [type, raw] of options.tlvs) {
    const value = typeof raw === 'string' ? Buffer.from(raw, 'latin1') : Buffer.from(raw);
    body.push(type, value.length, ...value);
  }
  const crcLength = options.noCrc ? 0 : 6;
  const header = Buffer.alloc(11);
  header.write(options.signature ?? 'TlvInfo\0', 0, 'latin1');
  header[8] = options.version ?? 1;
  header.writeUInt16BE(options.declaredLength ?? body.length + crcLength, 9);
  const withoutCrc = Buffer.concat([header, Buffer.from(body)]);
  if (options.noCrc) return withoutCrc;
  const crcInput = Buffer.concat([withoutCrc, Buffer.from([0xfe, 4])]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE((crc32(crcInput) ^ (options.badCrc ? 1 : 0)) >>> 0);
  return Buffer.concat([crcInput, crc]);
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
