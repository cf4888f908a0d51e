/** Signals caught before the command that handles them was ready. */
export interface HeldSignals {
  /** Stops holding, and says which signals came meanwhile, in order. */
  release(): NodeJS.Signals[];
}

/**
 * Catches `signals` from now on, so that one arriving while the program still
 * starts (the configuration read, the command's code loaded) is kept for the
 * command rather than ending the process: a SIGHUP must never kill `run`.
 */
export function holdSignals(signals: readonly NodeJS.Signals[]): HeldSignals {
  const seen: NodeJS.Signals[] = [];
  const hold = (signal: NodeJS.Signals) => void seen.push(signal);
  for (const signal of signals) process.on(signal, hold);
  return {
    release() {
      for (const signal of signals) process.off(signal, hold);
      return seen.splice(0);
    },
  };
}

/** The command word of a command line: the first argument that is neither an option nor `--config`'s value. */
export function commandOf(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--config') i++;
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}
