import { promises as fs } from 'node:fs';
import { HalError, isBranded, systemCode } from './errors';
import { describeTlvs, parseTlvInfo, TLV_DEVICE_VERSION, TLV_HEADER_LENGTH, TLV_SERIAL_NUMBER, tlvTotalLength, type Tlv } from './onie-tlv';
import type { DeviceHal, DeviceIdentity } from './types';
import { validateIdentity } from './validate-identity';

export interface EepromHalOptions {
  /** The EEPROM as a file: the sysfs `eeprom` node of an at24 chip, an nvmem node, or an image. */
  path: string;
  /** Where the TlvInfo structure starts in the file. */
  offset?: number;
  /** TLV holding `posserial`; 0x23 (Serial Number) unless the board keeps it elsewhere. */
  serialTlv?: number;
  /** TLV holding `posmodelframework`; 0x26 (Device Version). A one-byte value is sent as its decimal string. */
  modelTlv?: number;
  /** Receives one line per TLV read, for the technician's diagnostics. */
  trace?: (line: string) => void;
}

/** The board-identity EEPROM in ONIE TlvInfo layout. */
export function createEepromHal(options: EepromHalOptions): DeviceHal {
  const { path, offset = 0, serialTlv = TLV_SERIAL_NUMBER, modelTlv = TLV_DEVICE_VERSION } = options;
  return {
    description: `eeprom ${path}${offset ? ` at offset ${offset}` : ''}`,
    async identity(): Promise<DeviceIdentity> {
      const tlvs = parseTlvInfo(await readImage(path, offset), path);
      for (const line of describeTlvs(tlvs)) options.trace?.(line);
      const serial = find(tlvs, serialTlv, path);
      const model = find(tlvs, modelTlv, path);
      return validateIdentity(
        { serial: ascii(serial), modelFramework: model.length === 1 ? String(model[0]) : ascii(model) },
        `EEPROM ${path}`,
      );
    },
    async close() {},
  };
}

/** Reads the header, then exactly the declared structure: an I2C EEPROM is slow, and its tail is not ours. */
async function readImage(path: string, offset: number): Promise<Uint8Array> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, 'r');
  } catch (error) {
    throw unavailable(path, error);
  }
  try {
    const header = await readAt(handle, offset, TLV_HEADER_LENGTH);
    const total = tlvTotalLength(header, path);
    const rest = await readAt(handle, offset + TLV_HEADER_LENGTH, total - TLV_HEADER_LENGTH);
    const image = new Uint8Array(TLV_HEADER_LENGTH + rest.length);
    image.set(header, 0);
    image.set(rest, TLV_HEADER_LENGTH);
    return image;
  } catch (error) {
    if (isBranded(error)) throw error;
    throw unavailable(path, error);
  } finally {
    await handle.close();
  }
}

async function readAt(handle: fs.FileHandle, position: number, length: number): Promise<Uint8Array> {
  const buffer = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

function find(tlvs: Tlv[], type: number, path: string): Uint8Array {
  const tlv = tlvs.find((t) => t.type === type);
  if (!tlv) {
    throw new HalError('ERR_HAL_BAD_DATA', `EEPROM ${path} has no TLV 0x${type.toString(16).padStart(2, '0')}: program it, or set the TLV code in the hal configuration`);
  }
  return tlv.value;
}

function ascii(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}

function unavailable(path: string, error: unknown): HalError {
  const code = systemCode(error);
  // A file not there yet (the driver still loading at boot) may come in a moment; a refused permission does not.
  const [why, remedy, lasting] =
    code === 'ENOENT'
      ? [`there is no EEPROM file ${path}`, 'check hal.path and that the EEPROM driver (at24, nvmem) is loaded', false]
      : code === 'EACCES' || code === 'EPERM'
        ? [`permission denied reading the EEPROM ${path}`, 'let the service user read it (udev rule or group)', true]
        : [`cannot read the EEPROM ${path} (${code ?? 'error'})`, 'check the hardware', false];
  return new HalError('ERR_HAL_UNAVAILABLE', why, { cause: error, remedy, lasting });
}
