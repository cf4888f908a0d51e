import type { DeviceHal } from '../../hal/types';
import type { Config } from '../config';
import type { Clocks } from '../clock';
import type { HeldSignals } from '../held-signals';
import type { Logger } from '../log';
import type { OpenHalOptions } from '../open-hal';
import type { HttpTransport } from '../transport';

/** What a command may use; the CLI builds it, tests build their own. */
export interface CommandContext {
  config: Config;
  /** Opens the configured HAL on first call (options count only then); the CLI closes it after the command. */
  hal: (options?: OpenHalOptions) => Promise<DeviceHal>;
  transport: HttpTransport;
  clocks: Clocks;
  log: Logger;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Standard input, opened on first call: only provision reads it. */
  stdin: () => NodeJS.ReadableStream & { isTTY?: boolean };
  /** Signals that came while the program started (`run` acts on them). */
  heldSignals?: HeldSignals;
  /** Reads the configuration file again and opens what it names: the resident service's SIGHUP. */
  reload: () => Promise<Pick<CommandContext, 'config' | 'hal' | 'transport'>>;
}
