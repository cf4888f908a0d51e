import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, promises as fsPromises, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { needs } from './helpers/needs';
import { stageForOtherUser } from './helpers/other-user';
import { referenceCrc32 } from './helpers/reference-crc32';
import { createEepromHal } from '../hal/eeprom';
import { crc32, parseTlvInfo } from '../hal/onie-tlv';
import { EreceiptError } from '../src/errors';
import { goodImage, onieImage } from './helpers/onie-image';
import { seededRandom } from './helpers/random';
import { useTempDir } from './helpers/temp-dir';

const tempDir = useTempDir();

function eepromFile(bytes: Uint8Array, pad = 256): string {
  const file = join(tempDir(), 'eeprom');
  const padded = Buffer.alloc(Math.max(pad, bytes.length), 0xff);
  Buffer.from(bytes).copy(padded);
  writeFileSync(file, padded);
  return file;
}

async function failure(path: string, options: { offset?: number } = {}): Promise<EreceiptError> {
  const error = await createEepromHal({ path, ...options }).identity().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(EreceiptError);
  return error as EreceiptError;
}

describe('EEPROM driver', () => {
  it('reads posserial from TLV 0x23 and posmodelframework from TLV 0x26 as a decimal string', async () => {
    const trace: string[] = [];
    const hal = createEepromHal({ path: eepromFile(goodImage('POS-EE-000123', 12)), trace: (line) => trace.push(line) });
    expect(await hal.identity()).toEqual({ serial: 'POS-EE-000123', modelFramework: '12' });
    expect(trace).toEqual([
      '0x21 Product Name (10 bytes): "ACME POS 5"',
      '0x23 Serial Number (13 bytes): "POS-EE-000123"',
      '0x24 Base MAC Address (6 bytes): 00 11 22 33 44 55',
      '0x26 Device Version (1 bytes): 0c',
      '0x2b Manufacturer (4 bytes): "ACME"',
    ]);
  });

  it('honours the offset and configurable TLV codes (a vendor extension, an ASCII model)', async () => {
    const image = onieImage({ tlvs: [[0x2f, 'TAG-77'], [0x27, 'R2A'], [0x23, 'unused']] });
    const file = eepromFile(Buffer.concat([Buffer.alloc(100, 0xff), image]), 512);
    expect(await createEepromHal({ path: file, offset: 100, serialTlv: 0x2f, modelTlv: 0x27 }).identity()).toEqual({ serial: 'TAG-77', modelFramework: 'R2A' });
  });

  it('reads the header, then exactly the declared structure, and nothing of a structure that declares too much', async () => {
    const reads: { position: number; length: number }[] = [];
    const realOpen = fsPromises.open.bind(fsPromises);
    const spy = jest.spyOn(fsPromises, 'open').mockImplementation(async (...args: Parameters<typeof fsPromises.open>) => {
      const handle = await realOpen(...args);
      const realRead = handle.read.bind(handle);
      (handle as unknown as { read: unknown }).read = (buffer: Uint8Array, offset: number, length: number, position: number) => {
        reads.push({ position, length });
        return realRead(buffer, offset, length, position);
      };
      return handle;
    });
    try {
      const image = goodImage();
      const file = eepromFile(Buffer.concat([Buffer.alloc(64, 0xff), image]), 4096);
      await createEepromHal({ path: file, offset: 64 }).identity();
      expect(Math.min(...reads.map((r) => r.position))).toBe(64);
      expect(Math.max(...reads.map((r) => r.position + r.length))).toBe(64 + image.length);
      reads.length = 0;
      const overLong = onieImage({ tlvs: [[0x23, 'X']], declaredLength: 2040 });
      const refused = createEepromHal({ path: eepromFile(overLong, 4096) }).identity();
      await expect(refused).rejects.toThrow(/declares 2051 bytes, more than the 2048/);
      await expect(refused).rejects.toHaveProperty('code', 'ERR_HAL_BAD_DATA');
      expect(reads).toEqual([{ position: 0, length: 11 }]);
    } finally {
      spy.mockRestore();
    }
  });

  it('reads only the declared structure, never past 2048 bytes or the end of the file', async () => {
    // An exact-length file: any read past the structure would find nothing, which is fine;
    // a structure that claims more than the file holds is "truncated".
    const image = goodImage();
    const exact = join(tempDir(), 'exact');
    writeFileSync(exact, image);
    expect((await createEepromHal({ path: exact }).identity()).serial).toBe('POS-EE-000123');
    writeFileSync(exact, image.subarray(0, image.length - 3));
    expect((await failure(exact)).message).toMatch(new RegExp(`is truncated: it declares ${image.length} bytes but holds ${image.length - 3}`));
  });

  it.each([
    ['blank', Buffer.alloc(64, 0xff), /is blank \(all 0xFF\): the board identity was never programmed/],
    ['short header', Buffer.from('TlvInfo\0'), /is truncated: 8 bytes, less than the 11-byte header/],
    ['wrong header', onieImage({ tlvs: [[0x23, 'X']], signature: 'TlvJunk\0' }), /does not start with the TlvInfo header/],
    ['wrong version', onieImage({ tlvs: [[0x23, 'X']], version: 2 }), /has TlvInfo version 2, not 1/],
    ['over-long', onieImage({ tlvs: [[0x23, 'X']], declaredLength: 2040 }), /declares 2051 bytes, more than the 2048/],
    ['CRC failure', onieImage({ tlvs: [[0x23, 'X'], [0x26, [1]]], badCrc: true }), /fails its CRC-32 check \(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\)/],
    ['no CRC', onieImage({ tlvs: [[0x23, 'X'], [0x26, [1]]], noCrc: true }), /has no CRC-32 TLV/],
    ['TLV past the end', onieImage({ tlvs: [[0x23, 'XYZ'], [0x26, [1]]], declaredLength: 7 }), /TLV 0x26 running past the declared end/],
    ['no serial TLV', onieImage({ tlvs: [[0x26, [1]]] }), /has no TLV 0x23: program it, or set the TLV code/],
    ['serial too long', onieImage({ tlvs: [[0x23, 'S'.repeat(101)], [0x26, [1]]] }), /serial number of 101 characters \(the limit is 100\)/],
    ['serial not ASCII', onieImage({ tlvs: [[0x23, 'POS\u00e9\u0001'], [0x26, [1]]] }), /serial number that is not printable ASCII/],
    ['model too long', onieImage({ tlvs: [[0x23, 'X'], [0x26, 'ABCDEFGHIJK']] }), /model framework of 11 characters \(the limit is 10\)/],
  ])('%s is exit 65 with a message saying which', async (_name, image, message) => {
    // Exactly the bytes, no 0xFF padding after them, as a short nvmem node would be.
    const error = await failure(eepromFile(image, 0));
    expect(error).toMatchObject({ code: 'ERR_HAL_BAD_DATA', exitStatus: 65 });
    expect(error.message).toMatch(message);
  });

  it('a TLV after a valid CRC is refused for being after it', async () => {
    const image = onieImage({ tlvs: [[0x23, 'X'], [0x26, [1]]], afterCrc: [[0x21, 'A']] });
    // The CRC itself is right: only the position check can refuse this image.
    const crcAt = image.length - 3 - 6;
    expect(image.readUInt32BE(crcAt + 2)).toBe(referenceCrc32(image.subarray(0, crcAt + 2)));
    expect((await failure(eepromFile(image, 0))).message).toMatch(/has TLVs after the CRC-32 TLV, which must be last: check or reprogram/);
  });

  it('a missing file is exit 69', async () => {
    const error = await failure(join(tempDir(), 'no-such-eeprom'));
    expect(error).toMatchObject({ code: 'ERR_HAL_UNAVAILABLE', exitStatus: 69 });
    expect(error.message).toMatch(/there is no EEPROM file .*no-such-eeprom: check hal\.path/);
  });

  // Only root can run the child as another user; elsewhere this is skipped, and says so.
  needs('root')('a permission error names the path (run as an unprivileged user)', async () => {
    const dir = tempDir();
    chmodSync(dir, 0o755);
    const staged = stageForOtherUser(dir);
    const eeprom = join(dir, 'eeprom');
    writeFileSync(eeprom, goodImage(), { mode: 0o600 });
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ identityUrl: 'http://127.0.0.1:9', hal: { driver: 'eeprom', path: eeprom }, tokenFile: join(dir, 'run', 'token.json'), credentialsFile: join(dir, 'c') }), { mode: 0o644 });
    mkdirSync(join(dir, 'run'), { mode: 0o777 });
    const result = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const child = spawn(staged.node, [staged.bundle, '--config', config, 'boot'], { uid: 65534, gid: 65534, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('close', (status) => resolve({ status, stderr }));
    });
    expect(result).toEqual({ status: 69, stderr: `ereceipt-auth: error: permission denied reading the EEPROM ${eeprom}: let the service user read it (udev rule or group)\n` });
  });
});

describe('CRC-32', () => {
  it.each([
    ['', 0x00000000],
    ['a', 0xe8b7be43],
    ['123456789', 0xcbf43926],
    ['The quick brown fox jumps over the lazy dog', 0x414fa339],
  ])('check value of %p, by the driver and by the bitwise reference', (text, value) => {
    expect(crc32(Buffer.from(text))).toBe(value);
    expect(referenceCrc32(Buffer.from(text))).toBe(value);
  });

  it('the driver matches the reference (and zlib, where this Node has it) on 200 inputs', () => {
    const zlibCrc32 = (require('node:zlib') as { crc32?: (data: Uint8Array) => number }).crc32;
    for (let n = 0; n < 200; n++) {
      const bytes = Buffer.from(Array.from({ length: n * 7 }, (_, i) => (i * 31 + n) & 0xff));
      expect(crc32(bytes)).toBe(referenceCrc32(bytes));
      if (zlibCrc32) expect(crc32(bytes)).toBe(zlibCrc32(bytes));
    }
  });
});

describe('fuzz: 10,000 random and mutated images', () => {
  it('never crashes the parser, and accepts exactly the images that still hold the whole original', () => {
    const seed = 20261128;
    const random = seededRandom(seed);
    const int = (n: number) => Math.floor(random() * n);
    const base = goodImage();
    let accepted = 0;
    const wrong: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      let image: Buffer;
      const kind = i % 4;
      if (kind === 0) {
        image = Buffer.from(Array.from({ length: int(300) }, () => int(256)));
        if (random() < 0.5 && image.length >= 11) image.write('TlvInfo\0\x01', 0, 'latin1');
      } else if (kind === 1) {
        image = Buffer.from(base);
        for (let flips = 1 + int(4); flips > 0; flips--) {
          const at = int(image.length);
          image[at] = (image[at] as number) ^ (1 << int(8));
        }
      } else if (kind === 2) {
        image = Buffer.from(base.subarray(0, int(base.length + 1)));
        if (random() < 0.5) image = Buffer.concat([image, Buffer.from(Array.from({ length: int(40) }, () => int(256)))]);
      } else {
        image = Buffer.from(base);
        image.writeUInt16BE(int(65536), 9);
      }
      // The oracle: an image is good when the whole original structure is still there
      // (what follows it is padding); any other image passing would need a CRC collision.
      const intact = image.length >= base.length && image.subarray(0, base.length).equals(base);
      try {
        parseTlvInfo(image, 'fuzz');
        accepted += 1;
        if (!intact) wrong.push(`image ${i} accepted (${image.toString('hex')})`);
      } catch (error) {
        if (intact) wrong.push(`image ${i} refused: ${String(error)}`);
        if (!(error instanceof EreceiptError) || error.code !== 'ERR_HAL_BAD_DATA') {
          throw new Error(`seed ${seed}, image ${i} (${image.toString('hex')}): ${String(error)}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    // Both sides of the oracle were exercised: whole images, with and without padding, among many broken ones.
    expect(accepted).toBeGreaterThan(20);
    expect(accepted).toBeLessThan(200);
  });
});
