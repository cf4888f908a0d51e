import { chmodSync, copyFileSync, mkdirSync, realpathSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BUNDLE } from './bundle';

/** True when another user could run `path`: it is readable and executable by others, and so is every folder above it. */
export function runnableByOthers(path: string): boolean {
  const real = realpathSync(path);
  if ((statSync(real).mode & 0o005) !== 0o005) return false;
  for (let dir = dirname(real); ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) return false;
    if (dir === dirname(dir)) return true;
  }
}

/**
 * The bundle, and Node where need be, copied into `dir` (which must be open to
 * others) for a test that runs them as another user: a checkout or a Node binary
 * under /root, or in any 0700 folder, is out of that user's reach.
 */
export function stageForOtherUser(dir: string): { node: string; dist: string; bundle: string } {
  const dist = join(dir, 'dist');
  mkdirSync(dist, { mode: 0o755 });
  const bundle = join(dist, 'ereceipt-auth.js');
  copyFileSync(BUNDLE, bundle);
  chmodSync(bundle, 0o644);
  let node = process.execPath;
  if (!runnableByOthers(node)) {
    node = join(dir, 'node');
    copyFileSync(process.execPath, node);
    chmodSync(node, 0o755);
  }
  return { node, dist, bundle };
}
