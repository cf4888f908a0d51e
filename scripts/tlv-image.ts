import { crc32 } from '../hal/onie-tlv';

/**
 * A minimal ONIE TlvInfo image: Serial Number (0x23), Device Version (0x26) and the
 * CRC-32 TLV. For the benchmark and the platform check; the tests build theirs
 * with an independent CRC (test/helpers/onie-image.ts).
 */
export function tlvInfoImage(serial: string, version: number): Buffer {
  const tlvs = Buffer.concat([Buffer.from([0x23, serial.length]), Buffer.from(serial, 'latin1'), Buffer.from([0x26, 1, version])]);
  const header = Buffer.concat([Buffer.from('TlvInfo\0\x01', 'latin1'), Buffer.from([0, 0])]);
  header.writeUInt16BE(tlvs.length + 6, 9);
  const body = Buffer.concat([header, tlvs, Buffer.from([0xfe, 4])]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([body, crc]);
}
