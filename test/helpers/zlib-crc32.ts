import * as zlib from 'node:zlib';

/** node:zlib's CRC-32 (Node 20.15+), a reference independent of hal/onie-tlv.ts. */
export function zlibCrc32(data: Uint8Array): number {
  const crc32 = (zlib as unknown as { crc32?: (data: Uint8Array) => number }).crc32;
  if (!crc32) throw new Error('the tests need node:zlib crc32 (Node 20.15 or newer)');
  return crc32(data);
}
