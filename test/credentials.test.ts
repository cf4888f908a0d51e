import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { credentialsFileState, readCredentials, writeCredentials, type Credentials } from '../src/credentials';
import { EreceiptError } from '../src/errors';
import { redact, Secret } from '../src/secret';
import { runBundle } from './helpers/bundle';
import { needs } from './helpers/needs';
import { useTempDir } from './helpers/temp-dir';

const tempDir = useTempDir();
const creds: Credentials = {
  clientId: 'd0394a9f-0607-40de-a978-2d3eb8375b04',
  clientSecret: new Secret('6d62315e-d65a-4e41-9112-4195ea834edf'),
  presharedKey: new Secret('03ac674216f3e15c761ee1a5e255f067953623c8b388b4459e13f978d7c846f4'),
};
const device = { serial: 'SN-0001' };

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(EreceiptError);
    return (error as EreceiptError).code;
  }
  throw new Error('expected a failure');
}

describe('credentials file', () => {
  it('round-trips, mode 0600, in a folder it makes 0700, with no secret in the clear', async () => {
    const file = join(tempDir(), 'lib', 'credentials');
    await writeCredentials(file, creds, device);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(file, '..')).mode & 0o777).toBe(0o700);
    const raw = readFileSync(file).toString('latin1');
    expect(raw).not.toContain(creds.clientSecret.reveal());
    expect(raw).not.toContain(creds.presharedKey.reveal());
    expect(raw).not.toContain(creds.clientId);
    const back = await readCredentials(file, device);
    expect(back.clientId).toBe(creds.clientId);
    expect(back.clientSecret.reveal()).toBe(creds.clientSecret.reveal());
    expect(back.presharedKey.reveal()).toBe(creds.presharedKey.reveal());
    expect(readdirSync(join(file, '..'))).toEqual(['credentials']);
  });

  it('is refused on another terminal (another serial) with the generic message', async () => {
    const file = join(tempDir(), 'credentials');
    await writeCredentials(file, creds, device);
    await expect(readCredentials(file, { serial: 'SN-0002' })).rejects.toThrow(
      /cannot be opened on this terminal \(made on another device, altered, or damaged\): re-run provisioning/,
    );
  });

  it('is bound to the device secret when the hardware has one', async () => {
    const file = join(tempDir(), 'credentials');
    const secret = new Uint8Array([1, 2, 3, 4]);
    await writeCredentials(file, creds, { ...device, deviceSecret: secret });
    expect((await readCredentials(file, { ...device, deviceSecret: secret })).clientId).toBe(creds.clientId);
    expect(await codeOf(readCredentials(file, { ...device, deviceSecret: new Uint8Array([1, 2, 3, 5]) }))).toBe('ERR_CREDENTIALS_UNREADABLE');
    expect(await codeOf(readCredentials(file, device))).toBe('ERR_CREDENTIALS_UNREADABLE');
  });

  it('is refused when any single byte is altered, header included', async () => {
    const file = join(tempDir(), 'credentials');
    await writeCredentials(file, creds, device);
    const good = readFileSync(file);
    for (let i = 0; i < good.length; i++) {
      const bad = Buffer.from(good);
      bad[i] = (bad[i] as number) ^ 0x01;
      writeFileSync(file, bad, { mode: 0o600 });
      const error = await readCredentials(file, device).then(
        () => undefined,
        (e: EreceiptError) => e,
      );
      expect(error?.code).toBe('ERR_CREDENTIALS_UNREADABLE');
      expect(error?.message).toMatch(/cannot be opened on this terminal/);
    }
    writeFileSync(file, good.subarray(0, good.length - 1), { mode: 0o600 });
    expect(await codeOf(readCredentials(file, device))).toBe('ERR_CREDENTIALS_UNREADABLE');
  });

  it.each([0o644, 0o640, 0o604, 0o660].map((mode) => [mode.toString(8), mode] as const))('is refused with mode %s', async (_octal, mode) => {
    const file = join(tempDir(), 'credentials');
    await writeCredentials(file, creds, device);
    chmodSync(file, mode);
    await expect(readCredentials(file, device)).rejects.toThrow(new RegExp(`open to other users \\(mode ${mode.toString(8)}\\).*chmod 600`));
    expect(await credentialsFileState(file)).toBe('unreadable');
  });

  it('is refused behind a symbolic link', async () => {
    const dir = tempDir();
    await writeCredentials(join(dir, 'real'), creds, device);
    symlinkSync(join(dir, 'real'), join(dir, 'link'));
    expect(await codeOf(readCredentials(join(dir, 'link'), device))).toBe('ERR_CREDENTIALS_UNREADABLE');
  });

  it('says not provisioned when absent, and a read error for a folder', async () => {
    const dir = tempDir();
    await expect(readCredentials(join(dir, 'none'), device)).rejects.toThrow(/not provisioned: there is no credentials file/);
    expect(await credentialsFileState(join(dir, 'none'))).toBe('absent');
    mkdirSync(join(dir, 'folder'));
    expect(await codeOf(readCredentials(join(dir, 'folder'), device))).toBe('ERR_FILE_READ');
  });

  it('replaces an existing file, keeping its mode 0600', async () => {
    const file = join(tempDir(), 'credentials');
    await writeCredentials(file, creds, device);
    await writeCredentials(file, { ...creds, clientId: 'second' }, device);
    expect((await readCredentials(file, device)).clientId).toBe('second');
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  needs('root')("written by root into the service user's folder, it belongs to that user", async () => {
    const dir = join(tempDir(), 'lib');
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, 65534, 65534);
    await writeCredentials(join(dir, 'credentials'), creds, device);
    expect(statSync(join(dir, 'credentials'))).toMatchObject({ uid: 65534, gid: 65534 });
    // And root, reading on the service's behalf, trusts it: it is the folder owner's.
    expect((await readCredentials(join(dir, 'credentials'), device)).clientId).toBe(creds.clientId);
  });

  it.each([0o777, 0o770, 0o722, 0o1777])('is refused (78) in a folder others can write (mode %o), by name', async (mode) => {
    const dir = join(tempDir(), 'lib');
    await writeCredentials(join(dir, 'credentials'), creds, device);
    chmodSync(dir, mode);
    const error = await readCredentials(join(dir, 'credentials'), device).catch((e: EreceiptError) => e);
    expect(error).toMatchObject({ code: 'ERR_CREDENTIALS_UNREADABLE', exitStatus: 78 });
    expect((error as Error).message).toBe(
      `credentials file ${join(dir, 'credentials')} is not trusted: its folder ${dir} can be written by other users (mode ${mode.toString(8)}), so someone else could have put it there: run chmod go-w ${dir}, or give the file a folder of its own`,
    );
    chmodSync(dir, 0o755);
    expect((await readCredentials(join(dir, 'credentials'), device)).clientId).toBe(creds.clientId);
  });

  needs('root')("is refused (78) when it belongs to someone who is neither the reader, root, nor the folder's owner", async () => {
    const dir = join(tempDir(), 'lib');
    await writeCredentials(join(dir, 'credentials'), creds, device);
    chownSync(join(dir, 'credentials'), 12345, 12345);
    const error = await readCredentials(join(dir, 'credentials'), device).catch((e: EreceiptError) => e);
    expect(error).toMatchObject({ code: 'ERR_CREDENTIALS_UNREADABLE' });
    expect((error as Error).message).toBe(
      `credentials file ${join(dir, 'credentials')} is not trusted: it belongs to another user (uid 12345), so someone else could have put it there: re-run provisioning as the user that runs ereceipt-auth`,
    );
  });

  needs('mkfifo')('a FIFO in its place is refused at once, never waited on', async () => {
    const dir = join(tempDir(), 'lib');
    mkdirSync(dir, { mode: 0o700 });
    execFileSync('mkfifo', ['-m', '600', join(dir, 'credentials')]);
    const started = Date.now();
    expect(await codeOf(readCredentials(join(dir, 'credentials'), device))).toBe('ERR_FILE_READ');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('fails to write into an impossible place with exit 73', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'file'), '');
    const error = await writeCredentials(join(dir, 'file', 'credentials'), creds, device).catch((e: EreceiptError) => e);
    expect((error as EreceiptError).exitStatus).toBe(73);
  });
});

describe('Secret', () => {
  it('never prints its value', () => {
    const s = new Secret('hunter2-very-secret');
    expect(String(s)).toBe('[redacted]');
    expect(`${s}`).toBe('[redacted]');
    expect(JSON.stringify({ s })).toBe('{"s":"[redacted]"}');
    expect(inspect({ s })).not.toContain('hunter2');
    expect(s.reveal()).toBe('hunter2-very-secret');
  });

  it.each([
    ['as is', (v: string) => `bad key ${v} really`, 'bad key [redacted] really'],
    ['upper-cased', (v: string) => `bad key ${v.toUpperCase()}`, 'bad key [redacted]'],
    ['URL-encoded', (v: string) => `echo: client_secret=${encodeURIComponent(v)}&x=1`, 'echo: client_secret=[redacted]&x=1'],
    ['form-encoded', (v: string) => `echo: client_secret=${new URLSearchParams({ v }).toString().slice(2)}&x=1`, 'echo: client_secret=[redacted]&x=1'],
    ['most of it', (v: string) => `key starts ${v.slice(0, -3)}...`, 'key starts [redacted]...'],
    ['a piece of 8 from the middle', (v: string) => `got <${v.slice(5, 13)}>`, 'got <[redacted]>'],
    ['a piece of 7 is left alone', (v: string) => `got <${v.slice(5, 12)}>`, 'got <b/c d+e>'],
  ])('redact hides a secret echoed %s', (_name, echo, expected) => {
    const value = 'Sx9a/b/c d+e=f&g%h-0123';
    new Secret(value);
    expect(redact(echo(value))).toBe(expected);
  });
});

// The bundle keeps only TweetNaCl's secret-key half (scripts/tweetnacl-secretbox-only.mjs);
// jest runs the whole library. A file written by either must open in the other.
describe('the bundle and the whole TweetNaCl agree', () => {
  function bundleConfig(dir: string): string {
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({ identityUrl: 'http://127.0.0.1:9', hal: { driver: 'sim', serial: device.serial, modelFramework: '1' }, credentialsFile: join(dir, 'lib', 'credentials'), tokenFile: join(dir, 'run', 'token.json') }),
    );
    return config;
  }

  it('a file written by the library is read by the bundle', async () => {
    const dir = tempDir();
    const config = bundleConfig(dir);
    await writeCredentials(join(dir, 'lib', 'credentials'), creds, device);
    const status = await runBundle(['--config', config, 'status', '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ credentials: { state: 'ok', clientIdEnd: '5b04' } });
  });

  it('a file written by the bundle is read by the library', async () => {
    const dir = tempDir();
    const config = bundleConfig(dir);
    const lines = `client_id=${creds.clientId}\nclient_secret=${creds.clientSecret.reveal()}\npresharedkey=${creds.presharedKey.reveal()}\n`;
    expect((await runBundle(['--config', config, 'provision', '--stdin', '--offline'], { input: lines })).status).toBe(0);
    const read = await readCredentials(join(dir, 'lib', 'credentials'), device);
    expect([read.clientId, read.clientSecret.reveal(), read.presharedKey.reveal()]).toEqual([creds.clientId, creds.clientSecret.reveal(), creds.presharedKey.reveal()]);
  });
});
