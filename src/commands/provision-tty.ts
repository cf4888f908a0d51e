import { readCredentials, CREDENTIAL_LIMITS, type Credentials } from '../credentials';
import { EreceiptError, failureWhat, isEreceiptError } from '../errors';
import { createLineEditor, type LineEditor, type RawInput } from '../line-editor';
import { checkValue } from '../provision-input';
import { readDevice, saveCredentials, taxpayerOf, verifyCredentials, type Device, type Verified } from '../provisioning';
import { Secret } from '../secret';
import type { CommandContext } from './context';

type Field = keyof typeof CREDENTIAL_LIMITS;
const FIELDS: Field[] = ['client_id', 'client_secret', 'presharedkey'];
const HIDDEN: Record<Field, boolean> = { client_id: false, client_secret: true, presharedkey: true };
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** The refusals a technician can mend by typing one value again. */
const REFUSED_FIELD = new Map<string, Field>([
  ['invalid_client', 'client_id'],
  ['invalid_clientsecret', 'client_secret'],
  ['invalid_presharedkey', 'presharedkey'],
]);
const WIDTH = 79;

/**
 * `provision` on the serial console: shows what the terminal is, asks for the three
 * values (the secrets unseen), checks them with the identity service, and saves
 * them only after a success (or, with --offline, after a warning). Written for a
 * dumb 80-column terminal: plain ASCII, no colour, no cursor movement.
 */
export async function provisionInteractively(ctx: CommandContext, offline: boolean): Promise<void> {
  // Node's raw mode (libuv) keeps the terminal's own LF to CR LF output mapping: '\n' is enough.
  const say = (text = '') => ctx.stdout(`${wrap(text).join('\n')}\n`);
  const editor = createLineEditor(ctx.stdin() as unknown as RawInput, ctx.stdout);
  try {
    await converse(ctx, offline, editor, say);
  } finally {
    editor.close();
  }
}

async function converse(ctx: CommandContext, offline: boolean, editor: LineEditor, say: (text?: string) => void): Promise<void> {
  const device = await readDevice(ctx);
  say('This terminal, as its hardware reports it (compare with the taxpayer portal):');
  say(`  serial number    ${device.identity.serial}`);
  say(`  model framework  ${device.identity.modelFramework}`);
  say(`  OS version       ${device.osVersion}`);
  say(`  read through     ${(await ctx.hal()).description}`);
  say(`Stored credentials: ${await storedSummary(ctx, device)}`);
  say();
  say('Type the values from the taxpayer portal; the two secrets do not show as you type them. Backspace erases, Ctrl-U clears the line, Ctrl-C stops without saving anything.');
  say();

  {
    const values = {} as Record<Field, string>;
    for (const field of FIELDS) values[field] = await askField(editor, field, say);
    const credentials = (): Credentials => ({ clientId: values.client_id, clientSecret: new Secret(values.client_secret), presharedKey: new Secret(values.presharedkey) });

    const serial = device.identity.serial;
    if (offline) say('Warning: --offline: the credentials will be saved without checking them with the identity service; boot will tell whether they are accepted.');
    if (!(await yes(editor, `Save these credentials for terminal ${serial}${offline ? ' without checking' : ''}? [y/N]: `, false))) {
      throw new EreceiptError('ERR_INTERRUPTED', 'not saved: the previous credentials are in place');
    }
    let verified: Verified | undefined;
    while (!offline && !verified) {
      try {
        verified = await checking(ctx, device, credentials(), say, editor.signal);
      } catch (error) {
        if (editor.signal.aborted) throw new EreceiptError('ERR_INTERRUPTED', 'stopped: the previous credentials are in place', { cause: error });
        if (!isEreceiptError(error)) throw error;
        say(upToRemedy(error.message));
        const field = error.oauthError ? REFUSED_FIELD.get(error.oauthError) : undefined;
        const retryable = error.code === 'ERR_SERVICE_UNAVAILABLE';
        const again = retryable ? await yes(editor, 'Try again? [Y/n]: ', true) : field !== undefined && (await yes(editor, `Type ${field} again? [Y/n]: `, true));
        if (!again) throw new EreceiptError(error.code, `${error.message}; nothing was saved`, { cause: error });
        if (field !== undefined && !retryable) values[field] = await askField(editor, field, say);
      }
    }
    // A Ctrl-C during the check ends it here: nothing is saved.
    if (editor.signal.aborted) throw new EreceiptError('ERR_INTERRUPTED', 'stopped: the previous credentials are in place');
    await saveCredentials(ctx, device, credentials(), verified);
    say(`Credentials saved for terminal ${serial} (client_id ...${values.client_id.slice(-4)})${verified ? '' : ', not checked'}.`);
  }
}

async function askField(editor: LineEditor, field: Field, say: (text?: string) => void): Promise<string> {
  for (;;) {
    const value = await editor.ask(`${field}${HIDDEN[field] ? ' (hidden)' : ''}: `, { echo: !HIDDEN[field], max: CREDENTIAL_LIMITS[field] + 1 });
    try {
      checkValue(field, value);
    } catch (error) {
      say(`${failureWhat(error)}; type it again.`);
      // A line typed ahead (a secret meant for the next, hidden prompt) must not land in this one.
      editor.discardPending();
      continue;
    }
    if (field !== 'presharedkey' && !GUID.test(value)) {
      say(`Warning: ${field} does not look like the portal's (8-4-4-4-12 hex digits); it is kept as typed, check it.`);
    }
    return value;
  }
}

async function yes(editor: LineEditor, question: string, byDefault: boolean): Promise<boolean> {
  // An Enter pressed while the check was running is not an answer.
  editor.discardPending(0);
  for (;;) {
    const answer = (await editor.ask(question, { echo: true, max: 3 })).trim().toLowerCase();
    if (answer === '') return byDefault;
    if (answer === 'y' || answer === 'yes') return true;
    if (answer === 'n' || answer === 'no') return false;
  }
}

/** The check, with a dot every few seconds (at most 10) so a slow line does not look like a hang. */
async function checking(ctx: CommandContext, device: Device, credentials: Credentials, say: (text?: string) => void, signal: AbortSignal): Promise<Verified> {
  const intro = `Checking with the identity service at ${new URL(ctx.config.identityUrl).host} ...`;
  ctx.stdout(intro.length > 60 ? `${intro.slice(0, 57)}...` : intro);
  let shown = 0;
  const dots = setInterval(() => shown++ < 10 && ctx.stdout('.'), Math.max(1000, (ctx.config.timeoutSeconds * 1000) / 10));
  try {
    const verified = await verifyCredentials(ctx, device, credentials, signal);
    ctx.stdout(' accepted.\n');
    say(`The token is for ${taxpayerOf(verified.token)}: check that this is the shop's taxpayer.`);
    return verified;
  } catch (error) {
    ctx.stdout(isEreceiptError(error) && error.code === 'ERR_CREDENTIALS_REJECTED' ? ' refused.\n' : ' failed.\n');
    throw error;
  } finally {
    clearInterval(dots);
    say();
  }
}

async function storedSummary(ctx: CommandContext, device: Device): Promise<string> {
  try {
    const stored = await readCredentials(ctx.config.credentialsFile, device.binding);
    return `client_id ...${stored.clientId.slice(-4)} (they will be replaced)`;
  } catch (error) {
    const code = (error as EreceiptError).code;
    return code === 'ERR_NOT_PROVISIONED' ? 'none' : 'a file that cannot be used on this terminal (it will be replaced)';
  }
}

/** The part of a message that says what happened; the remedy after it is for the command line. */
function upToRemedy(message: string): string {
  const end = message.lastIndexOf('): ');
  return `${end >= 0 ? message.slice(0, end + 1) : message}.`;
}

/** Breaks text into lines of at most 79 columns, at spaces, for an 80-column console. */
export function wrap(text: string, width = WIDTH): string[] {
  if (text.length <= width) return [text];
  const lines: string[] = [];
  let line = '';
  const indent = /^ */.exec(text)?.[0] ?? '';
  for (const word of text.trim().split(/ +/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = `${indent}  ${word}`;
    } else line = line ? `${line} ${word}` : `${indent}${word}`;
  }
  lines.push(line);
  return lines.flatMap((l) => (l.length > width ? (l.match(new RegExp(`.{1,${width}}`, 'g')) ?? []) : [l]));
}
