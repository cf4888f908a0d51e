import { printable } from './printable';
import { redact } from './secret';

export type LogLevel = 'error' | 'warning' | 'info';

/** Where the module says what happened: one line per event, secrets removed. */
export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
}

export interface LoggerOptions {
  write: (line: string) => void;
  /** Show info lines (the default), or only warnings and errors. */
  quiet?: boolean;
  /** Start each line with its syslog priority (`<3>` error, `<4>` warning, `<6>` info), as journald and syslogd read it. */
  syslog?: boolean;
}

const PRIORITY: Record<LogLevel, number> = { error: 3, warning: 4, info: 6 };

export function createLogger({ write, quiet = false, syslog = false }: LoggerOptions): Logger {
  const emit = (level: LogLevel, message: string) => {
    // A message is one line, whatever a server or a file put in it.
    const text = printable(redact(message).replace(/[\r\n]+/g, ' '));
    write(`${syslog ? `<${PRIORITY[level]}>` : ''}ereceipt-auth: ${level === 'info' ? '' : `${level}: `}${text}\n`);
  };
  return {
    error: (message) => emit('error', message),
    warn: (message) => emit('warning', message),
    info: (message) => {
      if (!quiet) emit('info', message);
    },
  };
}
