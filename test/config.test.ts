import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { release, type } from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseConfig, resolveOsVersion } from '../src/config';
import { EreceiptError } from '../src/errors';
import { needs } from './helpers/needs';
import { stageForOtherUser } from './helpers/other-user';
import { useTempDir } from './helpers/temp-dir';

const tempDir = useTempDir();
const base = { identityUrl: 'https://id.preprod.eta.gov.eg', hal: { driver: 'eeprom', path: '/sys/bus/i2c/devices/0-0050/eeprom' } };

function configError(raw: unknown): string {
  try {
    parseConfig(raw, '/etc/ereceipt-auth/config.json');
  } catch (error) {
    expect(error).toBeInstanceOf(EreceiptError);
    expect((error as EreceiptError).code).toBe('ERR_CONFIG');
    expect((error as EreceiptError).exitStatus).toBe(78);
    return (error as Error).message;
  }
  throw new Error('expected a configuration error');
}

describe('parseConfig', () => {
  it('fills in the defaults of SPEC.md', () => {
    const config = parseConfig(base, '/etc/ereceipt-auth/config.json');
    expect(config).toEqual({
      configPath: '/etc/ereceipt-auth/config.json',
      identityUrl: 'https://id.preprod.eta.gov.eg',
      hal: { driver: 'eeprom', path: '/sys/bus/i2c/devices/0-0050/eeprom', offset: 0, serialTlv: 0x23, modelTlv: 0x26 },
      credentialsFile: '/var/lib/ereceipt-auth/credentials',
      tokenFile: '/run/ereceipt-auth/token.json',
      legacyServerConnect: false,
      timeoutSeconds: 30,
    });
  });

  it('takes every optional key and resolves relative paths from the file', () => {
    const config = parseConfig(
      {
        ...base,
        identityUrl: 'http://127.0.0.1:8080/prefix/',
        hal: { driver: 'serial', path: '/dev/ttyS1', baudRate: 9600 },
        osVersion: 'Debian 12',
        credentialsFile: 'state/credentials',
        tokenFile: '/run/x/token.json',
        scope: 'InvoicingAPI',
        caFile: 'eta-root.pem',
        legacyServerConnect: true,
        timeoutSeconds: 10,
      },
      '/opt/pos/config.json',
    );
    expect(config.identityUrl).toBe('http://127.0.0.1:8080/prefix');
    expect(config.hal).toEqual({ driver: 'serial', path: '/dev/ttyS1', baudRate: 9600, timeoutMs: 2000, tries: 3 });
    expect(config.credentialsFile).toBe('/opt/pos/state/credentials');
    expect(config.caFile).toBe('/opt/pos/eta-root.pem');
    expect(config.scope).toBe('InvoicingAPI');
    expect(config.legacyServerConnect).toBe(true);
  });

  it.each([
    [{ ...base, extra: 1 }, /unknown key extra/],
    [{ ...base, hal: { ...base.hal, colour: 'red' } }, /unknown key hal\.colour/],
    [{ hal: base.hal }, /lacks identityUrl/],
    [{ identityUrl: base.identityUrl }, /lacks hal/],
    [{ ...base, identityUrl: 42 }, /identityUrl that is not a non-empty string/],
    [{ ...base, identityUrl: 'not a url' }, /not a URL/],
    [{ ...base, identityUrl: 'http://id.eta.gov.eg' }, /not loopback: use https/],
    [{ ...base, identityUrl: 'ftp://127.0.0.1' }, /not https/],
    [{ ...base, identityUrl: 'https://u:p@id.eta.gov.eg' }, /user, query or fragment/],
    [{ ...base, hal: { driver: 'usb' } }, `configuration file /etc/ereceipt-auth/config.json has hal.driver "usb", which is not one of "eeprom", "serial", "sim": fix the file`],
    [{ ...base, hal: { driver: 'eeprom' } }, `configuration file /etc/ereceipt-auth/config.json lacks hal.path (a string), which is required: fix the file`],
    [{ ...base, hal: { ...base.hal, offset: -1 } }, `configuration file /etc/ereceipt-auth/config.json has hal.offset that is not between 0 and 1073741824: fix the file`],
    [{ ...base, hal: { ...base.hal, serialTlv: 0xfe } }, /hal\.serialTlv that is not between 0 and 253/],
    [{ ...base, hal: { driver: 'serial', path: '/dev/ttyS1', tries: 0 } }, `configuration file /etc/ereceipt-auth/config.json has hal.tries that is not between 1 and 10: fix the file`],
    [{ ...base, hal: { driver: 'serial', path: '/dev/ttyS1', timeoutMs: 1.5 } }, /hal\.timeoutMs that is not a whole number/],
    [{ ...base, hal: { driver: 'serial', path: '/dev/ttyS1', baudRate: 'fast' } }, /hal\.baudRate that is not a number/],
    [{ ...base, hal: { driver: 'sim', serial: 'X' } }, /lacks hal\.modelFramework/],
    [{ ...base, hal: { driver: 'sim', serial: 'X', modelFramework: '1', fault: 'fire' } }, `configuration file /etc/ereceipt-auth/config.json has hal.fault that is not one of "missing", "garbage", "crash": fix the file`],
    [{ ...base, osVersion: 'x'.repeat(51) }, /osVersion that is not at most 50/],
    [{ ...base, osVersion: 'Ubuntu 22.04 \u201cJammy\u201d' }, /osVersion that is not printable ASCII \(it is sent as an HTTP header\)/],
    [{ ...base, osVersion: 'Debian\n12' }, /osVersion that is not printable ASCII/],
    [{ ...base, legacyServerConnect: null }, /legacyServerConnect that is not true or false/],
    [{ ...base, scope: 'x'.repeat(201) }, /scope that is not at most 200/],
    [{ ...base, legacyServerConnect: 'yes' }, /legacyServerConnect that is not true or false/],
    [{ ...base, timeoutSeconds: 0 }, `configuration file /etc/ereceipt-auth/config.json has timeoutSeconds that is not between 1 and 600: fix the file`],
    [{ ...base, credentialsFile: '/x', tokenFile: '/x' }, `configuration file /etc/ereceipt-auth/config.json uses the same path for credentialsFile and tokenFile: fix the file`],
    [[], /does not hold a JSON object/],
    [{ ...base, hal: [] }, /hal that is not an object/],
  ])('refuses %j', (raw, message: string | RegExp) => {
    // A string is the whole message; a pattern is for rows whose point is one part of it.
    if (typeof message === 'string') expect(configError(raw)).toBe(message);
    else expect(configError(raw)).toMatch(message);
  });
});

describe('loadConfig', () => {
  it('names a missing file', () => {
    expect(() => loadConfig('/nonexistent/config.json')).toThrow(/configuration file \/nonexistent\/config.json does not exist/);
  });

  it('names unparsable JSON', () => {
    const file = join(tempDir(), 'config.json');
    writeFileSync(file, '{ "identityUrl": ');
    expect(() => loadConfig(file)).toThrow(/is not valid JSON/);
  });

  it('reads a good file', () => {
    const file = join(tempDir(), 'config.json');
    writeFileSync(file, JSON.stringify(base));
    chmodSync(file, 0o644);
    expect(loadConfig(file).identityUrl).toBe(base.identityUrl);
  });
  it('accepts a UTF-8 byte-order mark, as Notepad writes one', () => {
    const file = join(tempDir(), 'config.json');
    writeFileSync(file, `\uFEFF${JSON.stringify(base, null, 2)}\r\n`);
    expect(loadConfig(file).identityUrl).toBe(base.identityUrl);
  });

  it('shows invisible and control characters as escapes, never as themselves', () => {
    const file = join(tempDir(), 'config.json');
    writeFileSync(file, JSON.stringify({ ...base, ['colour\u200b\u001b[2J']: 'blue' }));
    let message = '';
    try {
      loadConfig(file);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toBe(`configuration file ${file} has unknown key colour\\u{200b}\\u{1b}[2J: fix the file`);
    expect(message).toMatch(/^[\x20-\x7e]+$/);
  });

  it.each([
    ['a folder', (dir: string) => dir, /is not a regular file \(a folder, a FIFO or a device\)/],
    ['a device that never ends', () => '/dev/zero', /is not a regular file/],
    ['a FIFO nobody writes to', (dir: string) => (execFileSync('mkfifo', [join(dir, 'fifo')]), join(dir, 'fifo')), /is not a regular file/],
    ['a file over 64 KiB', (dir: string) => (writeFileSync(join(dir, 'big.json'), ' '.repeat(65 * 1024)), join(dir, 'big.json')), /is larger than 64 KiB, too large to be the configuration/],
  ])('refuses %s at once, without reading it whole or waiting on it', (_name, make, message) => {
    const path = make(tempDir());
    const started = Date.now();
    expect(() => loadConfig(path)).toThrow(message);
    expect(Date.now() - started).toBeLessThan(500);
  });

  // Run as nobody (only root can start that), against a file only root may read.
  needs('root')('names a permission problem as one, with what to do', async () => {
    const dir = tempDir();
    chmodSync(dir, 0o755);
    const staged = stageForOtherUser(dir);
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify(base), { mode: 0o600 });
    const result = spawnSync(staged.node, [staged.bundle, '--config', file, 'status'], { uid: 65534, gid: 65534, encoding: 'utf8' });
    expect({ status: result.status, stderr: result.stderr }).toEqual({
      status: 78,
      stderr: `ereceipt-auth: error: configuration file ${file} is not readable by this user (permission denied): run as the service user or root, or fix its permissions\n`,
    });
  });
});

describe('resolveOsVersion', () => {
  it('prefers the configured value', () => {
    expect(resolveOsVersion({ osVersion: 'os' })).toBe('os');
  });

  it('reads PRETTY_NAME, else NAME and VERSION_ID, else the kernel', () => {
    const dir = tempDir();
    const pretty = join(dir, 'pretty');
    writeFileSync(pretty, 'NAME="Debian GNU/Linux"\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n');
    expect(resolveOsVersion({}, pretty)).toBe('Debian GNU/Linux 12 (bookworm)');
    const long = join(dir, 'long');
    writeFileSync(long, `NAME=Yocto\nVERSION_ID=4.0\nPRETTY_NAME="${'x'.repeat(60)}"\n`);
    expect(resolveOsVersion({}, long)).toBe('Yocto 4.0');
    const fancy = join(dir, 'fancy');
    writeFileSync(fancy, 'PRETTY_NAME="Ubuntu 22.04 \u201cJammy\u201d"\n');
    expect(resolveOsVersion({}, fancy)).toBe('Ubuntu 22.04 Jammy');
    // No os-release (a minimal image): the kernel, as `uname -sr` names it.
    expect(resolveOsVersion({}, join(dir, 'absent'))).toBe(`${type()} ${release()}`.slice(0, 50));
    expect(resolveOsVersion({}, join(dir, 'absent'))).toMatch(/^Linux \d+\.\d+/);
  });
});
