import type { DeviceHal } from '../../hal/types';
import type { Config } from '../config';
import type { Clocks } from '../clock';
import type { Logger } from '../log';
import type { HttpTransport } from '../transport';

/** What a command may use; the CLI builds it, tests build their own. */
export interface CommandContext {
  config: Config;
  /** Opens the configured HAL on first call; the CLI closes it after the command. */
  hal: () => Promise<DeviceHal>;
  transport: HttpTransport;
  clocks: Clocks;
  log: Logger;
  stdout: (text: string) => void;
  /** Standard input, opened on first call: only provision reads it. */
  stdin: () => NodeJS.ReadableStream & { isTTY?: boolean };
}
