import { rm } from 'node:fs/promises';
import { resolveOsVersion } from '../config';
import { writeCredentials } from '../credentials';
import { EreceiptError, isEreceiptError } from '../errors';
import { requestToken, type TokenSet } from '../identity-client';
import { saveToken } from '../login';
import { parseCredentialLines } from '../provision-input';
import { describeArg } from './args';
import type { CommandContext } from './context';

const MAX_INPUT_BYTES = 16 * 1024;

/**
 * `provision --stdin [--offline]`: set or replace the credentials. They are
 * checked against the identity service first (unless `--offline`); the old file
 * stays in place until the new one is completely written.
 */
export async function provision(ctx: CommandContext, args: string[]): Promise<void> {
  let fromStdin = false;
  let offline = false;
  for (const arg of args) {
    if (arg === '--stdin') fromStdin = true;
    else if (arg === '--offline') offline = true;
    else {
      throw new EreceiptError(
        'ERR_USAGE',
        `provision does not take ${describeArg(arg)}; secrets are never taken as arguments, as every process can read them: pipe them to provision --stdin`,
      );
    }
  }
  if (fromStdin && ctx.stdin().isTTY) {
    throw new EreceiptError('ERR_USAGE', '--stdin takes the values piped in, not typed: typed, they would show on the screen; pipe them from a file or a here-document');
  }
  if (!fromStdin) {
    throw new EreceiptError(
      'ERR_USAGE',
      ctx.stdin().isTTY
        ? 'interactive provisioning is not in this version: pipe client_id=, client_secret= and presharedkey= lines to provision --stdin'
        : 'provision reads the credentials from standard input only with --stdin: add --stdin',
    );
  }
  const credentials = parseCredentialLines(await readInput(ctx.stdin()));
  const hal = await ctx.hal();
  const identity = await hal.identity();
  const deviceSecret = hal.deviceSecret ? await hal.deviceSecret() : undefined;

  let verified: { token: TokenSet; obtainedAt: number } | undefined;
  if (offline) {
    ctx.log.warn('saving without checking the credentials against the identity service; boot will tell whether they are accepted');
  } else {
    const obtainedAt = ctx.clocks.now();
    const token = await requestToken(
      { identityUrl: ctx.config.identityUrl, identity, osVersion: resolveOsVersion(ctx.config), credentials, ...(ctx.config.scope ? { scope: ctx.config.scope } : {}) },
      { transport: ctx.transport, timeoutMs: ctx.config.timeoutSeconds * 1000, now: ctx.clocks.now },
    ).catch((error: unknown) => {
      if (isEreceiptError(error)) {
        const offlineHint = error.code === 'ERR_SERVICE_UNAVAILABLE' ? ' (--offline saves without checking)' : '';
        throw new EreceiptError(error.code, `${error.message}; nothing was saved${offlineHint}`, { cause: error });
      }
      throw error;
    });
    verified = { token, obtainedAt };
  }
  await writeCredentials(ctx.config.credentialsFile, credentials, { serial: identity.serial, ...(deviceSecret ? { deviceSecret } : {}) });
  // The token file must not go on serving a token of the credentials just replaced.
  try {
    if (verified) await saveToken(ctx.config, verified.token, verified.obtainedAt, ctx.log);
    else await rm(ctx.config.tokenFile, { force: true });
  } catch (error) {
    ctx.log.warn(`the credentials are saved, but the token file was not updated (${(error as Error).message})`);
  }
  ctx.stdout(
    `credentials saved for terminal ${identity.serial} (client_id ...${credentials.clientId.slice(-4)})${offline ? ', not verified' : ', verified with the identity service'}\n`,
  );
}

async function readInput(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buffer.length;
    if (size > MAX_INPUT_BYTES) throw new EreceiptError('ERR_USAGE', `the input is larger than ${MAX_INPUT_BYTES} bytes: nothing was saved`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
