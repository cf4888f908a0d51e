import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/**
 * A system tool a test runs (`python3`, `busybox`…), `root` for a test that
 * changes owners or drops privileges, or `tmpfs mount` for one that fills a disk.
 */
export type Requirement = string;

/** Under CI (`.ci/run` installs every tool and runs as root) a missing tool is a failure, not a skip. */
const STRICT = process.env['CI'] === 'true';

/** True when `name` is an executable file in a folder of PATH. */
export function hasTool(name: string): boolean {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      // not in this folder
    }
  }
  return false;
}

let tmpfsProbe: boolean | undefined;

/** Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN: not in every container). */
function canMountTmpfs(): boolean {
  if (tmpfsProbe !== undefined) return tmpfsProbe;
  tmpfsProbe = false;
  if (process.getuid?.() !== 0 || !hasTool('mount') || !hasTool('umount')) return tmpfsProbe;
  const dir = mkdtempSync(join(tmpdir(), 'ereceipt-auth-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir], { stdio: 'ignore' });
    tmpfsProbe = true;
  } catch {
    // not allowed here
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return tmpfsProbe;
}

/** Requirements about privilege rather than tools: never demanded under CI, only skipped by name. */
const PRIVILEGES = new Set(['root', 'tmpfs mount']);

function missing(requirements: Requirement[]): Requirement[] {
  return requirements.filter((r) => (r === 'root' ? process.getuid?.() !== 0 : r === 'tmpfs mount' ? !canMountTmpfs() : !hasTool(r)));
}

type Body = (...args: never[]) => unknown;

/**
 * `it`, when every requirement is met. Otherwise the test is skipped with
 * `[needs busybox]` in its title (the run's last lines list it); under `CI=true` a
 * missing tool fails the test instead. Root is never demanded: CI runs as root, and
 * a developer's run skips those tests by name.
 */
export function needs(...requirements: Requirement[]): jest.It {
  const absent = missing(requirements);
  if (absent.length === 0) return it;
  const tag = ` [needs ${absent.join(', ')}]`;
  const tools = absent.filter((r) => !PRIVILEGES.has(r));
  if (STRICT && tools.length > 0) {
    const fail = () => {
      throw new Error(`${tools.join(', ')} ${tools.length === 1 ? 'is' : 'are'} not on the PATH: .ci/run installs ${tools.length === 1 ? 'it' : 'them'}; with CI=true a missing tool fails the run`);
    };
    const failing = ((title: string) => it(`${title}${tag}`, fail)) as unknown as jest.It;
    (failing as { each: unknown }).each = (table: unknown) => (title: string) => (it.each as unknown as (t: unknown) => (n: string, f: Body) => void)(table)(`${title}${tag}`, fail);
    return failing;
  }
  const skipped = ((title: string, fn?: Body, timeout?: number) => it.skip(`${title}${tag}`, fn as jest.ProvidesCallback, timeout)) as unknown as jest.It;
  (skipped as { each: unknown }).each = (table: unknown) => (title: string, fn: Body, timeout?: number) =>
    (it.skip.each as unknown as (t: unknown) => (n: string, f: Body, ms?: number) => void)(table)(`${title}${tag}`, fn, timeout);
  return skipped;
}

/**
 * A PATH that lacks the named tools: a folder of links to every other program on
 * the PATH, made under `dir`. For testing the fallback a terminal without them takes.
 */
export function pathWithout(names: string[], dir: string): string {
  const bin = join(dir, 'bin-without');
  mkdirSync(bin, { recursive: true, mode: 0o755 });
  for (const folder of (process.env['PATH'] ?? '').split(delimiter)) {
    let entries: string[];
    try {
      entries = readdirSync(folder);
    } catch {
      continue;
    }
    for (const name of entries) {
      if (names.includes(name) || existsSync(join(bin, name))) continue;
      try {
        accessSync(join(folder, name), constants.X_OK);
        symlinkSync(join(folder, name), join(bin, name));
      } catch {
        // not a program
      }
    }
  }
  return bin;
}
