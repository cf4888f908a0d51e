// The serial driver over @serialport/binding-mock, with a simulated co-processor
// answering what the driver writes. The real native binding on a real pty is in
// serial-pty.test.ts.
import { MockBinding } from '@serialport/binding-mock';
import type { BindingInterface, BindingPortInterface } from '@serialport/bindings-interface';
import { createSerialHal, type SerialHalOptions } from '../hal/serial';
import { EreceiptError } from '../src/errors';

const PATH = '/dev/ttyMOCK0';

/** What the device answers to the n-th time it hears a command; undefined is silence. */
type Behaviour = (command: string, n: number) => string | undefined;

interface Device {
  binding: BindingInterface;
  written: string[];
}

function device(behaviour: Behaviour, options: { chunk?: number; echo?: boolean; banner?: string } = {}): Device {
  MockBinding.reset();
  MockBinding.createPort(PATH, { echo: options.echo ?? false, record: true, ...(options.banner ? { readyData: Buffer.from(options.banner) } : {}) });
  const written: string[] = [];
  const heard = new Map<string, number>();
  const binding = {
    ...MockBinding,
    list: () => MockBinding.list(),
    async open(openOptions: Parameters<typeof MockBinding.open>[0]): Promise<BindingPortInterface> {
      const port = await MockBinding.open(openOptions);
      const write = port.write.bind(port);
      port.write = async (buffer: Buffer) => {
        await write(buffer);
        const command = buffer.toString('latin1').trim();
        written.push(command);
        heard.set(command, (heard.get(command) ?? 0) + 1);
        const answer = behaviour(command, heard.get(command) as number);
        if (answer === undefined) return;
        const bytes = Buffer.from(answer, 'latin1');
        const size = options.chunk ?? bytes.length;
        let delay = 1;
        for (let at = 0; at < bytes.length; at += size) {
          const piece = bytes.subarray(at, at + size);
          setTimeout(() => port.isOpen && port.emitData(piece), delay++);
        }
      };
      return port;
    },
  } as unknown as BindingInterface;
  return { binding, written };
}

const values: Record<string, string> = { 'AT+SN?': 'POS-MOCK-0007', 'AT+MODEL?': '2' };
const good: Behaviour = (command) => {
  const name = command.slice(3, -1);
  return values[command] === undefined ? 'ERROR\r\n' : `+${name}: "${values[command]}"\r\nOK\r\n`;
};

function hal(d: Device, options: Partial<SerialHalOptions> = {}) {
  return createSerialHal({ path: PATH, baudRate: 115200, timeoutMs: 150, tries: 3, binding: d.binding, ...options });
}

async function failure(d: Device, options: Partial<SerialHalOptions> = {}): Promise<EreceiptError> {
  const error = await hal(d, options)
    .identity()
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(error).toBeInstanceOf(EreceiptError);
  return error as EreceiptError;
}

/** The driver closed the port on its way out: another open succeeds (the lock is released). */
async function expectClosed(): Promise<void> {
  const port = await MockBinding.open({ path: PATH, baudRate: 115200 });
  await port.close();
}

afterEach(() => MockBinding.reset());

describe('serial driver', () => {
  it('asks AT+SN? and AT+MODEL? and returns the identity', async () => {
    const d = device(good);
    expect(await hal(d).identity()).toEqual({ serial: 'POS-MOCK-0007', modelFramework: '2' });
    expect(d.written).toEqual(['AT+SN?', 'AT+MODEL?']);
    await expectClosed();
  });

  it.each([
    ['bytes one at a time, LF only, unquoted', { chunk: 1 }, (c: string) => `\n+${c.slice(3, -1)}: ${values[c]}\nOK\n`],
    ['CR only', { chunk: 3 }, (c: string) => `+${c.slice(3, -1)}: "${values[c]}"\rOK\r`],
    ['echo and a boot banner', { echo: true, banner: 'BOOT v1\r\nready\r\n' }, good],
    ['unasked lines before the answer', {}, (c: string) => `+RING\r\n*** noise ***\r\n${good(c, 1)}`],
  ])('%s', async (_name, options, behaviour) => {
    const d = device(behaviour, options);
    expect(await hal(d).identity()).toEqual({ serial: 'POS-MOCK-0007', modelFramework: '2' });
    await expectClosed();
  });

  it('retries a command that got no answer, and traces the exchange', async () => {
    const d = device((command, n) => (n === 1 ? undefined : good(command, n)));
    const trace: string[] = [];
    expect(await hal(d, { trace: (line) => trace.push(line) }).identity()).toEqual({ serial: 'POS-MOCK-0007', modelFramework: '2' });
    expect(d.written).toEqual(['AT+SN?', 'AT+SN?', 'AT+MODEL?', 'AT+MODEL?']);
    expect(trace).toEqual([
      '> AT+SN?',
      '  (try 1 of 3: no answer within 150 ms)',
      '> AT+SN?',
      '< +SN: "POS-MOCK-0007"',
      '< OK',
      '> AT+MODEL?',
      '  (try 1 of 3: no answer within 150 ms)',
      '> AT+MODEL?',
      '< +MODEL: "2"',
      '< OK',
    ]);
  });

  it('stale input waiting before a command is discarded, not taken for its answer', async () => {
    const d = device(good, { banner: '+SN: "POS-STALE"\r\nOK\r\n' });
    expect((await hal(d).identity()).serial).toBe('POS-MOCK-0007');
  });

  it.each([
    ['ERROR', () => 'ERROR\r\n', /gave no usable answer to AT\+SN\? after 3 tries \(last: ERROR\)/],
    ['+CME ERROR', () => '\r\n+CME ERROR: 10\r\n', /\(last: \+CME ERROR: 10\)/],
    ['garbage', () => '\x00\xff\xfe#@!\r\n~~~\r\n', /\(last: no answer within 150 ms\)/],
    ['OK without a value', () => 'OK\r\n', /\(last: OK without a \+SN: line\)/],
  ])('%s after all tries is exit 65', async (_name, behaviour, message) => {
    const d = device(behaviour);
    const error = await failure(d);
    expect(error).toMatchObject({ code: 'ERR_HAL_BAD_DATA', exitStatus: 65 });
    expect(error.message).toMatch(message);
    expect(d.written).toEqual(['AT+SN?', 'AT+SN?', 'AT+SN?']);
    await expectClosed();
  });

  it('silence is bounded by timeout x tries, never a hang', async () => {
    const d = device(() => undefined);
    const started = Date.now();
    const error = await failure(d, { timeoutMs: 100, tries: 4 });
    const elapsed = Date.now() - started;
    expect(error.message).toMatch(/after 4 tries \(last: no answer within 100 ms\): check the co-processor and hal\.baudRate/);
    expect(elapsed).toBeGreaterThanOrEqual(390);
    expect(elapsed).toBeLessThan(1000);
    await expectClosed();
  });

  it('a value outside the limits is exit 65', async () => {
    const d = device((command) => (command === 'AT+SN?' ? `+SN: "${'S'.repeat(101)}"\r\nOK\r\n` : good(command, 1)));
    expect((await failure(d)).message).toMatch(/serial device \/dev\/ttyMOCK0 has a serial number of 101 characters/);
  });

  it('no device at the path is exit 69', async () => {
    const d = device(good);
    const error = await failure(d, { path: '/dev/ttyNOPE' });
    expect(error).toMatchObject({ code: 'ERR_HAL_UNAVAILABLE', exitStatus: 69 });
    expect(error.message).toBe('there is no serial device /dev/ttyNOPE: check hal.path');
  });

  it('a port another process holds is exit 69, and is left alone', async () => {
    const d = device(good);
    const holder = await MockBinding.open({ path: PATH, baudRate: 115200 });
    const error = await failure(d);
    expect(error).toMatchObject({ code: 'ERR_HAL_UNAVAILABLE', exitStatus: 69 });
    expect(error.message).toBe('serial device /dev/ttyMOCK0 is in use by another process: stop it, or wait for it to finish');
    expect(holder.isOpen).toBe(true);
    await holder.close();
  });

  it('opens the port exclusively, 8N1 at the configured speed', async () => {
    const opened: unknown[] = [];
    const d = device(good);
    const spy = { ...d.binding, open: (o: unknown) => (opened.push(o), d.binding.open(o as never)) } as BindingInterface;
    await createSerialHal({ path: PATH, baudRate: 9600, timeoutMs: 150, tries: 1, binding: spy }).identity();
    expect(opened).toEqual([{ path: PATH, baudRate: 9600, dataBits: 8, parity: 'none', stopBits: 1, lock: true }]);
  });
});
