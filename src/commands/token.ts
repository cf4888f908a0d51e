import { readTokenFile, secondsLeft } from '../token-file';
import { describeArg } from './args';
import { EreceiptError, isEreceiptError } from '../errors';
import type { CommandContext } from './context';

/** A token with less than this left is not handed out: the caller could not use it. */
export const MIN_SECONDS_LEFT = 60;

/** `token`: print a valid access token and nothing else. */
export async function token(ctx: CommandContext, args: string[]): Promise<void> {
  if (args.length > 0) throw new EreceiptError('ERR_USAGE', `token does not take ${describeArg(args[0] as string)}: see --help`);
  const file = await readTokenFile(ctx.config.tokenFile);
  if (file && secondsLeft(file, ctx.clocks.now()) >= MIN_SECONDS_LEFT) {
    ctx.stdout(`${file.access_token}\n`);
    return;
  }
  const [{ loadGrant, loginWithRetry }, { createTokenSink }] = await Promise.all([import('../login'), import('../token-sink')]);
  const sink = createTokenSink({ tokenFile: () => ctx.config.tokenFile, clocks: ctx.clocks, log: ctx.log });
  try {
    const readGrant = async () => loadGrant(ctx.config, await ctx.hal());
    const { held } = await loginWithRetry(readGrant, { transport: ctx.transport, config: ctx.config, clocks: ctx.clocks, log: ctx.log, waitMs: 0 });
    try {
      await sink.accept(held);
    } catch (error) {
      if (!isEreceiptError(error) || error.code !== 'ERR_FILE_WRITE') throw error;
      // The caller asked for a token and has one: a full or read-only disk must not
      // throw it away. The next call logs in again, and stderr says why.
      ctx.log.warn(`${error.message}; the token is printed but not kept, so the next call logs in again`);
    }
    ctx.stdout(`${held.token.accessToken}\n`);
  } catch (error) {
    await sink.noteFailure(error);
    throw error;
  }
}
