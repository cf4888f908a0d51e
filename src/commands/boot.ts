import { EreceiptError } from '../errors';
import { loadGrant, loginWithRetry } from '../login';
import { createTokenSink } from '../token-sink';
import type { TokenFile } from '../token-file';
import { describeArg } from './args';
import type { CommandContext } from './context';

export const DEFAULT_BOOT_WAIT_SECONDS = 60;

/** `boot [--wait SECONDS]`: log in, retrying transient failures, write the token file, exit. */
export async function boot(ctx: CommandContext, args: string[]): Promise<void> {
  const waitSeconds = parseWait(args);
  // "A token within --wait": the one login loop (retrying what the classification calls
  // retry-soon), then the one sink every entry point writes through.
  const sink = createTokenSink({ tokenFile: () => ctx.config.tokenFile, clocks: ctx.clocks, log: ctx.log });
  try {
    const readGrant = async () => loadGrant(ctx.config, await ctx.hal());
    const { held, grant } = await loginWithRetry(readGrant, { transport: ctx.transport, config: ctx.config, clocks: ctx.clocks, log: ctx.log, waitMs: waitSeconds * 1000 });
    const file = (await sink.accept(held)) as TokenFile;
    ctx.log.info(`authenticated terminal ${grant.identity.serial}${file.taxpayer_rin ? ` for taxpayer RIN ${file.taxpayer_rin}` : ''}; token valid until ${file.expires_at}${file.scope ? ` (scope ${file.scope})` : ''}`);
  } catch (error) {
    await sink.noteFailure(error);
    throw error;
  }
}

function parseWait(args: string[]): number {
  let wait = DEFAULT_BOOT_WAIT_SECONDS;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const value = arg === '--wait' ? args[++i] : arg.startsWith('--wait=') ? arg.slice(7) : undefined;
    if (value === undefined) {
      throw new EreceiptError('ERR_USAGE', arg === '--wait' ? '--wait needs a number of seconds' : `boot does not take ${describeArg(arg)}: see --help`);
    }
    if (!/^\d+(\.\d+)?$/.test(value) || Number(value) > 86_400) throw new EreceiptError('ERR_USAGE', '--wait takes a number of seconds from 0 to 86400');
    wait = Number(value);
  }
  return wait;
}
