/**
 * CRC-32 (IEEE 802.3, the zlib one) computed bit by bit from its definition: a
 * reference independent of hal/onie-tlv.ts's table, that runs on every Node the
 * product supports (node:zlib has crc32 only from Node 20.15).
 */
export function referenceCrc32(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
