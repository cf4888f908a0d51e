import { commandOf, holdSignals, type HeldSignals } from './held-signals';

/**
 * The first code of the bundle to run (main.ts imports it before anything else):
 * `run` must survive a SIGHUP, or act on a SIGTERM, that comes while the rest of
 * the program is still being loaded. What comes earlier still, while Node itself
 * starts, meets the default action: no JavaScript can catch it. `run.pid` appears
 * only once the signals are handled, so a reload can wait for it.
 */
export const heldSignals: HeldSignals | undefined = commandOf(process.argv.slice(2)) === 'run' ? holdSignals(['SIGTERM', 'SIGINT', 'SIGHUP']) : undefined;
