import type { DeviceHal } from '../hal/types';
import type { HalConfig } from './config';
import { EreceiptError } from './errors';

/**
 * The one place that knows the drivers: picks the one the configuration names.
 * Each driver is loaded only when chosen, so the serial driver's native binding
 * is never loaded on a terminal that reads an EEPROM.
 */
export async function openHal(config: HalConfig): Promise<DeviceHal> {
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
    case 'eeprom':
    case 'serial':
      throw new EreceiptError('ERR_HAL_UNAVAILABLE', `the ${config.driver} driver is not in this build: use a build that includes it`);
  }
}
