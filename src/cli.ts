import type { DeviceHal } from '../hal/types';
import { configPathFrom, loadConfig, type Config } from './config';
import { EreceiptError, exitStatusOf, isEreceiptError } from './errors';
import { systemClocks, type Clocks } from './clock';
import { createLogger } from './log';
import { openHal, type OpenHalOptions } from './open-hal';
import { redact } from './secret';
import type { HttpTransport } from './transport';
import { describeArg } from './commands/args';
import type { CommandContext } from './commands/context';
import type { HeldSignals } from './held-signals';

declare const __VERSION__: string;
export const VERSION = typeof __VERSION__ === 'string' ? __VERSION__ : '0.0.0-dev';

export const USAGE = `Usage: ereceipt-auth [--config FILE] COMMAND [options]

Commands:
  boot [--wait SECONDS]  log in, write the token file and exit; retry for up
                         to SECONDS (60) while the service is unreachable
  run                    stay resident: keep the token file valid, renewing
                         ahead of expiry; SIGHUP reloads, SIGTERM stops
  provision [--offline]  on the console: ask for the credentials (the secrets
                         unseen), check them with the identity service, save
  provision --stdin [--offline]
                         the same from client_id=, client_secret= and
                         presharedkey= lines piped to standard input
  provision --check      check the stored credentials; change nothing
  status [--json] [--trace]
                         show the terminal, credentials, token and last error;
                         --trace adds what the HAL read (TLVs, serial lines);
                         exits 0 only while a valid token is held
  token                  print a valid access token on standard output

Options:
  --config FILE          configuration file (default: $ERECEIPT_AUTH_CONFIG,
                         then /etc/ereceipt-auth/config.json)
  --help, --version

Exit status: 0 ok, 64 usage, 65 bad data from the device, 69 device missing,
70 internal error, 73/74 cannot write/read a file, 75 identity service
unreachable (try later), 77 credentials rejected, 78 configuration missing or
invalid, not provisioned, or credentials file unreadable, 130 provisioning
stopped with Ctrl-C.
`;

/** Where the CLI reads and writes; `main` passes the process's own. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  /** Signals caught since the process started, for `run`. */
  heldSignals?: HeldSignals;
}

/** Seams for tests; each defaults to the real thing. */
export interface CliSeams {
  clocks?: Clocks;
  transport?: HttpTransport;
  openHal?: typeof openHal;
}

type Command = (ctx: CommandContext, args: string[]) => Promise<void>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  boot: async () => (await import('./commands/boot')).boot,
  provision: async () => (await import('./commands/provision')).provision,
  run: async () => (await import('./commands/run')).run,
  status: async () => (await import('./commands/status')).status,
  token: async () => (await import('./commands/token')).token,
};

/** Runs one command line; resolves to the exit status. Never throws. */
export async function runCli(argv: string[], io: CliIo, seams: CliSeams = {}): Promise<number> {
  const log = createLogger({ write: io.stderr });
  let hal: DeviceHal | undefined;
  try {
    const { configArg, command, rest, help, version } = parseArgs(argv);
    if (help) {
      io.stdout(USAGE);
      return 0;
    }
    if (version) {
      io.stdout(`ereceipt-auth ${VERSION}\n`);
      return 0;
    }
    const load = command === undefined ? undefined : COMMANDS[command];
    if (!load) {
      const shown = command !== undefined && /^[a-z-]{1,20}$/.test(command) ? `unknown command "${command}"` : 'no command given';
      throw new EreceiptError('ERR_USAGE', `${shown}: the commands are ${Object.keys(COMMANDS).join(', ')}; see --help`);
    }
    const run = await load();
    const configPath = configPathFrom(configArg, io.env);
    const compose = (config: Config) => {
      let opening: Promise<DeviceHal> | undefined;
      return {
        config,
        hal: (options?: OpenHalOptions) => {
          // A driver that failed to open is tried afresh next time (boot and run retry a busy UART).
          opening ??= (seams.openHal ?? openHal)(config.hal, options).then(
            (opened) => (hal = opened),
            (error: unknown) => {
              opening = undefined;
              throw error;
            },
          );
          return opening;
        },
        transport: seams.transport ?? lazyTransport(config),
      };
    };
    const ctx: CommandContext = {
      ...compose(loadConfig(configPath)),
      clocks: seams.clocks ?? systemClocks,
      log,
      stdout: io.stdout,
      stderr: io.stderr,
      stdin: () => io.stdin,
      ...(io.heldSignals ? { heldSignals: io.heldSignals } : {}),
      reload: async () => {
        const next = compose(loadConfig(configPath));
        await hal?.close().catch(() => {});
        hal = undefined;
        return next;
      },
    };
    await run(ctx, rest);
    return 0;
  } catch (error) {
    return report(error, log);
  } finally {
    await hal?.close().catch(() => {});
  }
}

/** The network stack and node-fetch load on the first request, not at start-up. */
function lazyTransport(config: Parameters<typeof import('./transport').createTransport>[0]): HttpTransport {
  let real: HttpTransport | undefined;
  return async (url, init) => {
    real ??= (await import('./transport')).createTransport(config);
    return real(url, init);
  };
}

function report(error: unknown, log: ReturnType<typeof createLogger>): number {
  if (isEreceiptError(error)) {
    log.error(error.message);
    return error.exitStatus;
  }
  const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  log.error(`internal error (${redact(what).slice(0, 200)}): please report it with the output of "ereceipt-auth status"`);
  return exitStatusOf.ERR_INTERNAL;
}

interface ParsedArgs {
  configArg?: string;
  command?: string;
  rest: string[];
  help: boolean;
  version: boolean;
}

/** Global options may stand before or after the command; everything else belongs to the command. */
function parseArgs(argv: string[]): ParsedArgs {
  const parsed: ParsedArgs = { rest: [], help: false, version: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--config') {
      const value = argv[++i];
      if (value === undefined || value === '') throw new EreceiptError('ERR_USAGE', '--config needs a file name');
      parsed.configArg = value;
    } else if (arg.startsWith('--config=')) {
      parsed.configArg = arg.slice('--config='.length);
      if (parsed.configArg === '') throw new EreceiptError('ERR_USAGE', '--config needs a file name');
    } else if (arg === '--help' || arg === '-h') {
      parsed.help = true;
    } else if (arg === '--version' || arg === '-V') {
      parsed.version = true;
    } else if (parsed.command === undefined) {
      if (arg.startsWith('-')) throw new EreceiptError('ERR_USAGE', `${describeArg(arg)} belongs after the command, as in "ereceipt-auth boot --wait 30": see --help`);
      parsed.command = arg;
    } else {
      parsed.rest.push(arg);
    }
  }
  return parsed;
}
