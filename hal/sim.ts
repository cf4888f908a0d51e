import { HalError } from './errors';
import type { DeviceHal, DeviceIdentity } from './types';
import { validateIdentity } from './validate-identity';

/**
 * How the simulated terminal misbehaves:
 * - `missing`: no device at all (exit 69);
 * - `garbage`: the device answers with bytes that are not an identity (exit 65);
 * - `crash`: the driver fails in a way nobody classified, as a driver bug would (exit 70).
 * Slowness is `delayMs`, on top of any fault.
 */
export type SimHalFault = 'missing' | 'garbage' | 'crash';

export interface SimHalOptions {
  serial: string;
  modelFramework: string;
  deviceSecret?: Uint8Array;
  fault?: SimHalFault;
  delayMs?: number;
}

/** A simulated terminal, with its state changeable while it is in use. */
export interface SimHal extends DeviceHal {
  /** Changes what the next reads return or how they fail. */
  set(changes: Partial<SimHalOptions>): void;
  /** How many times the identity has been read. */
  readonly reads: number;
}

export function createSimHal(options: SimHalOptions): SimHal {
  let state: SimHalOptions = { ...options };
  let reads = 0;

  async function answer(): Promise<void> {
    reads += 1;
    if (state.delayMs) await new Promise((resolve) => setTimeout(resolve, state.delayMs));
    if (state.fault === 'missing') {
      throw new HalError('ERR_HAL_UNAVAILABLE', 'simulated terminal: no device answers', { remedy: 'check the hal setting in the configuration' });
    }
    if (state.fault === 'crash') throw new TypeError('simulated driver failure');
  }

  return {
    description: 'sim (simulated terminal)',
    get reads() {
      return reads;
    },
    set(changes) {
      state = { ...state, ...changes };
    },
    async identity(): Promise<DeviceIdentity> {
      await answer();
      const identity =
        state.fault === 'garbage'
          ? { serial: '\u00ff\u00ff\u0000\u00ff', modelFramework: state.modelFramework }
          : { serial: state.serial, modelFramework: state.modelFramework };
      return validateIdentity(identity, 'simulated terminal');
    },
    ...(options.deviceSecret
      ? {
          async deviceSecret(): Promise<Uint8Array> {
            await answer();
            return new Uint8Array(state.deviceSecret ?? options.deviceSecret ?? []);
          },
        }
      : {}),
    async close() {},
  };
}
