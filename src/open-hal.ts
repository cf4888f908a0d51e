import type { DeviceHal } from '../hal/types';
import type { HalConfig } from './config';
import { EreceiptError } from './errors';
import { loadSerialDriver as loadSerial } from './serial-loader';

export interface OpenHalOptions {
  /** Receives the driver's raw exchange (TLVs, serial lines), for `status --trace`. */
  trace?: (line: string) => void;
}

/**
 * The one place that knows the drivers: picks the one the configuration names.
 * Each driver is loaded only when chosen, so the serial driver's native binding
 * is never loaded on a terminal that reads an EEPROM.
 */
export async function openHal(config: HalConfig, options: OpenHalOptions = {}): Promise<DeviceHal> {
  const trace = options.trace ? { trace: options.trace } : {};
  switch (config.driver) {
    case 'sim': {
      const { createSimHal } = await import('../hal/sim');
      return createSimHal({
        serial: config.serial,
        modelFramework: config.modelFramework,
        ...(config.fault ? { fault: config.fault } : {}),
        ...(config.delayMs ? { delayMs: config.delayMs } : {}),
        ...(config.deviceSecret ? { deviceSecret: new TextEncoder().encode(config.deviceSecret) } : {}),
      });
    }
    case 'eeprom': {
      const { createEepromHal } = await import('../hal/eeprom');
      return createEepromHal({ path: config.path, offset: config.offset, serialTlv: config.serialTlv, modelTlv: config.modelTlv, ...trace });
    }
    case 'serial': {
      const { createSerialHal, LinuxBinding } = await loadSerialDriver();
      return createSerialHal({ path: config.path, baudRate: config.baudRate, timeoutMs: config.timeoutMs, tries: config.tries, binding: LinuxBinding, ...trace });
    }
  }
}

async function loadSerialDriver(): Promise<typeof import('../hal/serial-driver')> {
  try {
    return await loadSerial();
  } catch (error) {
    throw new EreceiptError(
      'ERR_HAL_UNAVAILABLE',
      `the serial driver cannot be loaded (${String((error as Error).message).split('\n')[0]})`,
      { cause: error, remedy: 'copy serial-driver.js and the prebuilds folder beside ereceipt-auth.js', lasting: true },
    );
  }
}
