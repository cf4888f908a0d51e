import { readCredentials } from '../credentials';
import { EreceiptError, isEreceiptError } from '../errors';
import { parseCredentialLines } from '../provision-input';
import { readDevice, saveCredentials, taxpayerOf, verifyCredentials, type Verified } from '../provisioning';
import { describeArg } from './args';
import type { CommandContext } from './context';

const MAX_INPUT_BYTES = 16 * 1024;

/**
 * `provision`: set or replace the credentials, interactively on a terminal or
 * from `--stdin`; checked with the identity service first unless `--offline`; the
 * old file stays in place until the new one is completely written. `--check`
 * checks the stored credentials and changes nothing.
 */
export async function provision(ctx: CommandContext, args: string[]): Promise<void> {
  const flags = { stdin: false, offline: false, check: false };
  for (const arg of args) {
    const flag = arg.startsWith('--') ? (arg.slice(2) as keyof typeof flags) : undefined;
    if (flag !== undefined && flag in flags) flags[flag] = true;
    else {
      throw new EreceiptError(
        'ERR_USAGE',
        `provision does not take ${describeArg(arg)}; secrets are never taken as arguments, as every process can read them: run provision on the console, or pipe them to provision --stdin`,
      );
    }
  }
  if (flags.check) {
    if (flags.stdin || flags.offline) throw new EreceiptError('ERR_USAGE', '--check goes alone: it checks the stored credentials and changes nothing');
    return check(ctx);
  }
  const tty = ctx.stdin().isTTY === true;
  if (flags.stdin && tty) {
    throw new EreceiptError('ERR_USAGE', '--stdin takes the values piped in, not typed: typed, they would show on the screen; run provision without --stdin to be asked for them');
  }
  if (!flags.stdin && !tty) {
    throw new EreceiptError('ERR_USAGE', 'standard input is not a terminal, so there is nobody to ask: pipe client_id=, client_secret= and presharedkey= lines to provision --stdin');
  }
  if (tty) {
    const { provisionInteractively } = await import('./provision-tty');
    return provisionInteractively(ctx, flags.offline);
  }

  const credentials = parseCredentialLines(await readInput(ctx.stdin()));
  const device = await readDevice(ctx);
  let verified: Verified | undefined;
  if (flags.offline) {
    ctx.log.warn('saving without checking the credentials against the identity service; boot will tell whether they are accepted');
  } else {
    verified = await verifyCredentials(ctx, device, credentials).catch((error: unknown) => {
      if (!isEreceiptError(error)) throw error;
      const offlineHint = error.code === 'ERR_SERVICE_UNAVAILABLE' ? ' (--offline saves without checking)' : '';
      throw new EreceiptError(error.code, `${error.message}; nothing was saved${offlineHint}`, { cause: error });
    });
  }
  await saveCredentials(ctx, device, credentials, verified);
  ctx.stdout(
    `credentials saved for terminal ${device.identity.serial} (client_id ...${credentials.clientId.slice(-4)})${verified ? `, accepted for ${taxpayerOf(verified.token)}` : ', not verified'}\n`,
  );
}

/** `provision --check`: are the stored credentials still accepted? Nothing is written. */
async function check(ctx: CommandContext): Promise<void> {
  const device = await readDevice(ctx);
  const credentials = await readCredentials(ctx.config.credentialsFile, device.binding);
  const { token } = await verifyCredentials(ctx, device, credentials);
  ctx.stdout(
    `the stored credentials of terminal ${device.identity.serial} (client_id ...${credentials.clientId.slice(-4)}) are accepted for ${taxpayerOf(token)} (a token for ${token.expiresIn} s was issued)\n`,
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
