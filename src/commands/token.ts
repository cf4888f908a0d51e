import { readTokenFile, secondsLeft, type TokenFile } from '../token-file';
import { describeArg } from './args';
import { EreceiptError, failureWhat, isEreceiptError } from '../errors';
import type { CommandContext } from './context';

/** A token with less than this left is not handed out when a new one can be had: the caller could not use it. */
export const MIN_SECONDS_LEFT = 60;
/** How often a `token` waiting for another process's login looks at the token file, ms. */
const WAIT_STEP_MS = 100;

/**
 * `token`: print a valid access token and nothing else. From the token file while
 * it has MIN_SECONDS_LEFT; else by one login for all: while `run` holds the file it
 * is the one that renews, and separate `token` processes take turns (`login.lock`),
 * so ten callers at once make one login. When the login fails for a reason that may
 * pass (the service unreachable) and the file's token is still valid, that token is
 * printed after all, with one warning on stderr.
 */
export async function token(ctx: CommandContext, args: string[]): Promise<void> {
  if (args.length > 0) throw new EreceiptError('ERR_USAGE', `token does not take ${describeArg(args[0] as string)}: see --help`);
  const tokenFile = ctx.config.tokenFile;
  const usable = (file: TokenFile | undefined, seconds: number) => (file && secondsLeft(file, ctx.clocks.now()) >= seconds ? file : undefined);
  const fresh = usable(await readTokenFile(tokenFile), MIN_SECONDS_LEFT);
  if (fresh) {
    ctx.stdout(`${fresh.access_token}\n`);
    return;
  }

  const [{ lockHolder, loginLockPath, tryLock }, { classifyFailure }] = await Promise.all([import('../run-lock'), import('../failure-class')]);
  // The resident service renews the file ahead of expiry: never a login beside it.
  const service = await lockHolder(tokenFile);
  if (service) {
    const file = usable(await readTokenFile(tokenFile), 1);
    if (!file) {
      throw new EreceiptError('ERR_SERVICE_UNAVAILABLE', `there is no valid token in ${tokenFile}, and ereceipt-auth run (pid ${service.pid}) is the one that logs in`, {
        remedy: 'see "ereceipt-auth status" for why it has none; try again later',
      });
    }
    ctx.log.warn(`the token has ${Math.floor(secondsLeft(file, ctx.clocks.now()))} s left; ereceipt-auth run (pid ${service.pid}) renews it`);
    ctx.stdout(`${file.access_token}\n`);
    return;
  }

  // One login at a time among separate processes: whoever waited takes the new token.
  const deadline = ctx.clocks.monotonic() + (ctx.config.timeoutSeconds + 5) * 1000;
  for (;;) {
    let taken: ReturnType<typeof tryLock>;
    try {
      taken = tryLock(loginLockPath(tokenFile), 'login lock');
    } catch (error) {
      // No lock where the token folder cannot be written: a login all the same, for this caller.
      if (!isEreceiptError(error) || error.code !== 'ERR_FILE_WRITE') throw error;
      await loginAndPrint(ctx);
      return;
    }
    if ('release' in taken) {
      try {
        const meanwhile = usable(await readTokenFile(tokenFile), MIN_SECONDS_LEFT);
        if (meanwhile) ctx.stdout(`${meanwhile.access_token}\n`);
        else await loginAndPrint(ctx);
      } catch (error) {
        // The service may be back in a moment, and the file's token still serves until then.
        const file = classifyFailure(error) === 'retry-soon' ? usable(await readTokenFile(tokenFile), 1) : undefined;
        if (!file) throw error;
        ctx.log.warn(`${failureWhat(error)}; printed the token in ${tokenFile}, valid for ${Math.floor(secondsLeft(file, ctx.clocks.now()))} s more`);
        ctx.stdout(`${file.access_token}\n`);
      } finally {
        await taken.release();
      }
      return;
    }
    // Another `token` is logging in: its token will be in the file.
    if (ctx.clocks.monotonic() > deadline) {
      throw new EreceiptError('ERR_SERVICE_UNAVAILABLE', `another ereceipt-auth (pid ${taken.pid}) has been logging in for too long`, { remedy: 'try again later' });
    }
    await ctx.clocks.sleep(WAIT_STEP_MS);
    const written = usable(await readTokenFile(tokenFile), MIN_SECONDS_LEFT);
    if (written) {
      ctx.stdout(`${written.access_token}\n`);
      return;
    }
  }
}

async function loginAndPrint(ctx: CommandContext): Promise<void> {
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
