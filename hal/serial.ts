import type { BindingInterface, BindingPortInterface } from '@serialport/bindings-interface';
import { HalError } from './errors';
import { atCommand, createAtReader, printableLine, type AtAnswer } from './at-protocol';
import type { DeviceHal, DeviceIdentity } from './types';
import { validateIdentity } from './validate-identity';

export interface SerialHalOptions {
  /** The UART, by explicit path (`/dev/ttyS1`): terminals have no udev to list ports. */
  path: string;
  baudRate: number;
  /** How long one command waits for its answer. */
  timeoutMs: number;
  /** How many times a command is sent before giving up. */
  tries: number;
  /** The serialport binding: the native one in production, `@serialport/binding-mock` in tests. */
  binding: BindingInterface;
  /** Receives the exchange, one line each way, for the technician's diagnostics. */
  trace?: (line: string) => void;
}

/** A co-processor on a UART that answers AT+SN? and AT+MODEL?. */
export function createSerialHal(options: SerialHalOptions): DeviceHal {
  const { path } = options;
  return {
    description: `serial ${path} at ${options.baudRate} baud`,
    async identity(): Promise<DeviceIdentity> {
      const port = await openPort(options);
      const input = startReading(port);
      try {
        const serial = await ask(port, input, 'SN', options);
        const modelFramework = await ask(port, input, 'MODEL', options);
        return validateIdentity({ serial, modelFramework }, `serial device ${path}`);
      } finally {
        // A port that would not close leaves its read pending: then do not wait for it.
        if (await port.close().then(() => true, () => false)) await input.done;
      }
    },
    async close() {},
  };
}

async function openPort(options: SerialHalOptions): Promise<BindingPortInterface> {
  try {
    // lock: an exclusive flock, so two processes never interleave on the UART.
    return await options.binding.open({ path: options.path, baudRate: options.baudRate, dataBits: 8, parity: 'none', stopBits: 1, lock: true });
  } catch (error) {
    const message = String((error as Error).message ?? error);
    // A busy port or one not there yet (a USB adapter still being set up at boot) may
    // come in a moment; a refused permission does not.
    const [why, remedy, lasting] = /lock/i.test(message)
      ? [`serial device ${options.path} is in use by another process`, 'stop it, or wait for it to finish', false]
      : /ENOENT|no such file|does not exist/i.test(message)
        ? [`there is no serial device ${options.path}`, 'check hal.path', false]
        : /EACCES|permission/i.test(message)
          ? [`permission denied opening the serial device ${options.path}`, 'add the service user to the dialout group', true]
          : [`cannot open the serial device ${options.path} (${printableLine(message)})`, 'check hal.path and the hardware', false];
    throw new HalError('ERR_HAL_UNAVAILABLE', why, { cause: error, remedy, lasting });
  }
}

interface Input {
  /** Waits for the next bytes, or undefined when `ms` passed first. */
  next(ms: number): Promise<Uint8Array | undefined>;
  /** Forgets whatever arrived and was not taken yet. */
  clear(): void;
  /** Settles once reading has stopped (the port was closed). */
  done: Promise<void>;
}

/** One read loop for the life of the port; a timed-out command does not leave a read behind. */
function startReading(port: BindingPortInterface): Input {
  const queue: Uint8Array[] = [];
  let wake: (() => void) | undefined;
  let failure: unknown;
  const done = (async () => {
    try {
      for (;;) {
        const { bytesRead, buffer } = await port.read(Buffer.alloc(256), 0, 256);
        queue.push(Uint8Array.prototype.slice.call(buffer, 0, bytesRead));
        wake?.();
      }
    } catch (error) {
      if (!(error as { canceled?: boolean }).canceled && port.isOpen) failure = error;
      wake?.();
    }
  })();
  return {
    done,
    clear: () => void queue.splice(0),
    async next(ms) {
      if (queue.length === 0 && failure === undefined) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
      if (failure !== undefined) throw failure;
      return queue.shift();
    },
  };
}

async function ask(port: BindingPortInterface, input: Input, name: string, options: SerialHalOptions): Promise<string> {
  const command = atCommand(name);
  const shown = command.trim();
  let last = '';
  for (let attempt = 1; attempt <= options.tries; attempt++) {
    const reader = createAtReader(name, (line) => options.trace?.(`< ${printableLine(line)}`));
    try {
      // Whatever the device said before this command (a banner, a late answer) is stale.
      await port.flush();
      input.clear();
      options.trace?.(`> ${shown}`);
      await port.write(Buffer.from(command, 'latin1'));
      const answer = await awaitAnswer(input, reader.push, options.timeoutMs);
      if (answer?.kind === 'value') return answer.value;
      last = answer ? answer.detail : `no answer within ${options.timeoutMs} ms`;
    } catch (error) {
      throw new HalError('ERR_HAL_UNAVAILABLE', `serial device ${options.path} failed while talking to it (${printableLine(String((error as Error).message ?? error))}): check the hardware`, { cause: error });
    }
    options.trace?.(`  (try ${attempt} of ${options.tries}: ${last})`);
  }
  throw new HalError(
    'ERR_HAL_BAD_DATA',
    `serial device ${options.path} gave no usable answer to ${shown} after ${options.tries} tries (last: ${last}): check the co-processor and hal.baudRate`,
  );
}

async function awaitAnswer(input: Input, push: (bytes: Uint8Array) => AtAnswer | undefined, timeoutMs: number): Promise<AtAnswer | undefined> {
  // The monotonic clock: at boot, NTP may move the wall clock by years.
  const now = () => Number(process.hrtime.bigint()) / 1e6;
  const deadline = now() + timeoutMs;
  for (;;) {
    const left = deadline - now();
    if (left <= 0) return undefined;
    const bytes = await input.next(left);
    if (bytes) {
      const answer = push(bytes);
      if (answer) return answer;
    }
  }
}
