import { closeSync, constants, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import nacl from 'tweetnacl';
import { writeFileAtomic } from './atomic-file';
import { EreceiptError, isEreceiptError, systemCode } from './errors';
import { Secret } from './secret';

/** What the identity service knows this terminal by, besides its hardware identity. */
export interface Credentials {
  clientId: string;
  clientSecret: Secret;
  presharedKey: Secret;
}

/** What ties the credentials file to one terminal: read through the HAL, never stored. */
export interface DeviceBinding {
  serial: string;
  deviceSecret?: Uint8Array;
}

/** The seed's limits on the three values. */
export const CREDENTIAL_LIMITS = { client_id: 100, client_secret: 100, presharedkey: 200 } as const;

// File layout, version 1:
//   "ERAC" | version 0x01 | flags (bit 0: a device secret went into the key) | salt[16] | nonce[24] | secretbox
// The header bytes go into the key derivation, so changing any of them fails the
// decryption like any other alteration.
const MAGIC = [0x45, 0x52, 0x41, 0x43];
const VERSION = 1;
const HEADER_LENGTH = 4 + 1 + 1 + 16;
const NONCE_LENGTH = nacl.secretbox.nonceLength;
const MAX_FILE_BYTES = 4096;
const KEY_CONTEXT = new TextEncoder().encode('ereceipt-auth credentials v1\0');

type Random = (length: number) => Uint8Array;
/** tweetnacl's own source: node:crypto's randomBytes, loaded when first needed. */
const systemRandom: Random = (length) => nacl.randomBytes(length);

/** Encrypts and writes the credentials, atomically, mode 0600. */
export async function writeCredentials(
  path: string,
  credentials: Credentials,
  binding: DeviceBinding,
  random: Random = systemRandom,
): Promise<void> {
  const header = new Uint8Array(HEADER_LENGTH);
  header.set(MAGIC, 0);
  header[4] = VERSION;
  header[5] = binding.deviceSecret ? 1 : 0;
  header.set(random(16), 6);
  const nonce = random(NONCE_LENGTH);
  const plain = new TextEncoder().encode(
    JSON.stringify({
      client_id: credentials.clientId,
      client_secret: credentials.clientSecret.reveal(),
      presharedkey: credentials.presharedKey.reveal(),
    }),
  );
  const key = deriveKey(header, binding);
  const box = nacl.secretbox(plain, nonce, key);
  plain.fill(0);
  key.fill(0);
  const file = new Uint8Array(header.length + nonce.length + box.length);
  file.set(header, 0);
  file.set(nonce, header.length);
  file.set(box, header.length + nonce.length);
  await writeFileAtomic(path, file, { mode: 0o600, what: 'credentials file' });
}

/**
 * Reads and decrypts the credentials. A missing file is `ERR_NOT_PROVISIONED`;
 * one that others may read, or that does not decrypt with this terminal's key
 * for any reason, is `ERR_CREDENTIALS_UNREADABLE` (exit 78).
 */
export async function readCredentials(path: string, binding: DeviceBinding): Promise<Credentials> {
  const bytes = readProtectedFile(path);
  const undecryptable = new EreceiptError(
    'ERR_CREDENTIALS_UNREADABLE',
    `credentials file ${path} cannot be opened on this terminal (made on another device, altered, or damaged): re-run provisioning`,
  );
  if (bytes.length < HEADER_LENGTH + NONCE_LENGTH + nacl.secretbox.overheadLength) throw undecryptable;
  const header = bytes.subarray(0, HEADER_LENGTH);
  if (MAGIC.some((b, i) => header[i] !== b) || header[4] !== VERSION || header[5] !== (binding.deviceSecret ? 1 : 0)) {
    throw undecryptable;
  }
  const key = deriveKey(header, binding);
  const plain = nacl.secretbox.open(bytes.subarray(HEADER_LENGTH + NONCE_LENGTH), bytes.subarray(HEADER_LENGTH, HEADER_LENGTH + NONCE_LENGTH), key);
  key.fill(0);
  if (!plain) throw undecryptable;
  let fields: Record<string, unknown>;
  try {
    fields = JSON.parse(new TextDecoder().decode(plain)) as Record<string, unknown>;
  } catch {
    throw undecryptable;
  } finally {
    plain.fill(0);
  }
  const { client_id: clientId, client_secret: clientSecret, presharedkey } = fields;
  if (typeof clientId !== 'string' || typeof clientSecret !== 'string' || typeof presharedkey !== 'string') throw undecryptable;
  return { clientId, clientSecret: new Secret(clientSecret), presharedKey: new Secret(presharedkey) };
}

/** Whether a credentials file is there, without decrypting it (for `status`). */
export async function credentialsFileState(path: string): Promise<'present' | 'absent' | 'unreadable'> {
  try {
    readProtectedFile(path);
    return 'present';
  } catch (error) {
    return (error as EreceiptError).code === 'ERR_NOT_PROVISIONED' ? 'absent' : 'unreadable';
  }
}

/**
 * The key comes from the serial number, which is no secret: whoever can put a file
 * where the credentials file is expected can make the terminal log in as anyone.
 * So the file must be its reader's (or root's), in a folder no one else can write:
 * one owned by the reader or root and writable by neither group nor others. Root,
 * reading on the service's behalf, also trusts a file of the folder's own owner
 * (provisioning as root hands the file to the service user who owns the folder).
 */
function checkOwnership(path: string, fileUid: number): void {
  const me = process.geteuid?.();
  if (me === undefined) return;
  const dir = dirname(path);
  let folder: { uid: number; mode: number };
  try {
    folder = statSync(dir);
  } catch {
    return; // the file was just opened in it; a folder gone meanwhile fails the read anyway
  }
  const distrust = (why: string, fix: string) =>
    new EreceiptError('ERR_CREDENTIALS_UNREADABLE', `credentials file ${path} is not trusted: ${why}, so someone else could have put it there: ${fix}`);
  if ((folder.mode & 0o022) !== 0) {
    throw distrust(`its folder ${dir} can be written by other users (mode ${(folder.mode & 0o7777).toString(8)})`, `run chmod go-w ${dir}, or give the file a folder of its own`);
  }
  if (me !== 0 && folder.uid !== me && folder.uid !== 0) {
    throw distrust(`its folder ${dir} belongs to another user (uid ${folder.uid})`, `run as that user, or give the file a folder of this user's own`);
  }
  const trusted = fileUid === me || fileUid === 0 || (me === 0 && fileUid === folder.uid);
  if (!trusted) throw distrust(`it belongs to another user (uid ${fileUid})`, 're-run provisioning as the user that runs ereceipt-auth');
}

/** Synchronous, like the other small files: the promise file API costs start-up time and memory that `boot` should not pay. */
function readProtectedFile(path: string): Uint8Array {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO planted in its place must not hang the open.
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    throw openError(path, error);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new EreceiptError('ERR_FILE_READ', `credentials file ${path} is not a regular file: remove it and re-run provisioning`);
    if ((stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8);
      throw new EreceiptError(
        'ERR_CREDENTIALS_UNREADABLE',
        `credentials file ${path} is open to other users (mode ${mode}), so it is not trusted: run chmod 600 on it, or re-run provisioning`,
      );
    }
    checkOwnership(path, stat.uid);
    if (stat.size > MAX_FILE_BYTES) {
      throw new EreceiptError('ERR_CREDENTIALS_UNREADABLE', `credentials file ${path} is too large to be a credentials file: re-run provisioning`);
    }
    // Read up to one byte past the cap, so a file that grew since fstat is refused too.
    const buffer = new Uint8Array(MAX_FILE_BYTES + 1);
    let length = 0;
    for (let n; (n = readSync(fd, buffer, length, buffer.length - length, null)) > 0; ) length += n;
    if (length > MAX_FILE_BYTES) {
      throw new EreceiptError('ERR_CREDENTIALS_UNREADABLE', `credentials file ${path} is too large to be a credentials file: re-run provisioning`);
    }
    return buffer.subarray(0, length);
  } catch (error) {
    if (isEreceiptError(error)) throw error;
    throw new EreceiptError('ERR_FILE_READ', `cannot read the credentials file ${path} (${systemCode(error) ?? 'error'}): check the storage`, { cause: error });
  } finally {
    closeSync(fd);
  }
}

function openError(path: string, error: unknown): EreceiptError {
  switch (systemCode(error)) {
    case 'ENOENT':
      return new EreceiptError('ERR_NOT_PROVISIONED', `not provisioned: there is no credentials file ${path}: run "ereceipt-auth provision"`, { cause: error });
    case 'EACCES':
    case 'EPERM':
      return new EreceiptError('ERR_CREDENTIALS_UNREADABLE', `credentials file ${path} is not readable by this user: run as the service user, or re-run provisioning`, {
        cause: error,
      });
    case 'ELOOP':
      return new EreceiptError('ERR_CREDENTIALS_UNREADABLE', `credentials file ${path} is a symbolic link, which is not trusted: re-run provisioning`, { cause: error });
    default:
      return new EreceiptError('ERR_FILE_READ', `cannot read the credentials file ${path} (${systemCode(error) ?? 'error'}): check the storage`, { cause: error });
  }
}

function deriveKey(header: Uint8Array, binding: DeviceBinding): Uint8Array {
  const serial = new TextEncoder().encode(binding.serial);
  const secret = binding.deviceSecret ?? new Uint8Array(0);
  const input = new Uint8Array(KEY_CONTEXT.length + header.length + 4 + serial.length + 4 + secret.length);
  const view = new DataView(input.buffer);
  let at = 0;
  for (const part of [KEY_CONTEXT, header]) {
    input.set(part, at);
    at += part.length;
  }
  for (const part of [serial, secret]) {
    view.setUint32(at, part.length);
    input.set(part, at + 4);
    at += 4 + part.length;
  }
  const key = nacl.hash(input).slice(0, nacl.secretbox.keyLength);
  input.fill(0);
  return key;
}
