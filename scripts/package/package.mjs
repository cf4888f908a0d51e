// `npm run package`: the Debian packages (amd64, arm64, armhf) and, of the same tree,
// the tarballs for images that are not Debian (Buildroot, Yocto), in build/packages/.
// Built from dist/ (npm run build) with dpkg-deb and maintainer scripts written to
// Debian policy (scripts/package/debian/). VERSION=x.y.z overrides package.json's
// version (the image test builds a higher one to upgrade to).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { manPage } from './man.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const top = join(here, '..', '..');
const out = process.env.OUT ?? join(top, 'build', 'packages');
const pkg = JSON.parse(readFileSync(join(top, 'package.json'), 'utf8'));
const version = process.env.VERSION ?? pkg.version;
if (!/^\d+\.\d+\.\d+([+~.][0-9A-Za-z.+~]+)?$/.test(version)) throw new Error(`package: version ${version} is not a Debian native version`);
// The image builder's own name and address go here (MAINTAINER=...); lintian refuses a local one.
const MAINTAINER = process.env.MAINTAINER ?? 'ereceipt-auth maintainers <ereceipt-auth@example.com>';

/** Debian architecture → Node's `prebuilds/` folder and the binding each one ships. */
const ARCHES = {
  amd64: { prebuilds: 'linux-x64', binding: 'node.napi.glibc.node' },
  arm64: { prebuilds: 'linux-arm64', binding: 'node.napi.armv8.node' },
  // Debian armhf is ARMv7 with hardware floating point.
  armhf: { prebuilds: 'linux-arm', binding: 'node.napi.armv7.node' },
};

const gz = (data) => gzipSync(data, { level: 9, mtime: 0 });
const file = (root, path, data, mode = 0o644) => {
  const target = join(root, path);
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, data);
  chmodSync(target, mode);
};

/** The program's files, the same in the .deb and the tarball: /usr, /lib and /etc. */
function stageTree(root, arch) {
  const lib = 'usr/lib/ereceipt-auth';
  for (const name of ['ereceipt-auth.js', 'serial-driver.js', 'proxy-agent.js', 'index.js']) {
    file(root, `${lib}/${name}`, readFileSync(join(top, 'dist', name)), name === 'ereceipt-auth.js' ? 0o755 : 0o644);
  }
  const { prebuilds, binding } = ARCHES[arch];
  file(root, `${lib}/prebuilds/${prebuilds}/${binding}`, readFileSync(join(top, 'dist', 'prebuilds', prebuilds, binding)));
  // The command: the program itself (#!/usr/bin/env node), no shell in between.
  mkdirSync(join(root, 'usr', 'bin'), { recursive: true });
  symlinkSync('../lib/ereceipt-auth/ereceipt-auth.js', join(root, 'usr', 'bin', 'ereceipt-auth'));

  // The init files of scripts/init/ as they are (they name the packaged paths), the
  // unit's documentation pointed at the man page.
  const unit = readFileSync(join(top, 'scripts', 'init', 'ereceipt-auth.service'), 'utf8')
    .replace(/^# systemd unit: install as[\s\S]*?(?=^# Units that need)/m, '# Installed by the ereceipt-auth package.\n')
    .replace(/^Documentation=.*$/m, 'Documentation=man:ereceipt-auth(8)');
  file(root, 'lib/systemd/system/ereceipt-auth.service', unit);
  file(root, 'etc/init.d/ereceipt-auth', readFileSync(join(top, 'scripts', 'init', 'ereceipt-auth.sh')), 0o755);
  file(root, 'etc/default/ereceipt-auth', readFileSync(join(here, 'default')));
  file(root, 'etc/ereceipt-auth/config.json', readFileSync(join(here, 'config.json')));
  file(root, 'usr/lib/tmpfiles.d/ereceipt-auth.conf', readFileSync(join(here, 'tmpfiles.conf')));

  const help = execFileSync(process.execPath, [join(top, 'dist', 'ereceipt-auth.js'), '--help'], { encoding: 'utf8' });
  file(root, 'usr/share/man/man8/ereceipt-auth.8.gz', gz(manPage(help, version)));
  const doc = 'usr/share/doc/ereceipt-auth';
  file(root, `${doc}/README.md.gz`, gz(readFileSync(join(top, 'README.md'))));
  file(root, `${doc}/copyright`, copyright());
  file(root, `${doc}/changelog.gz`, gz(changelog()));
  // The token file's contract, for the POS application's developer on the terminal.
  file(root, 'usr/share/ereceipt-auth/token-file.schema.json', readFileSync(join(top, 'schema', 'token-file.schema.json')));
  file(root, 'usr/share/lintian/overrides/ereceipt-auth', readFileSync(join(here, 'lintian-overrides')));
}

function copyright() {
  const year = new Date().getUTCFullYear();
  const license = (name) => JSON.parse(readFileSync(join(top, 'node_modules', name, 'package.json'), 'utf8')).license;
  const bundled = ['node-fetch', 'tweetnacl', 'serialport', '@serialport/bindings-cpp', 'https-proxy-agent', 'agent-base', 'proxy-from-env'];
  return `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ereceipt-auth
Comment: The program bundles these npm packages, under their own licenses:
${bundled.map((name) => ` ${name} (${license(name)})`).join('\n')}

Files: *
Copyright: ${year} ereceipt-auth maintainers
License: proprietary
 All rights reserved. Not for redistribution.
`;
}

function changelog() {
  const date = execFileSync('date', ['-u', '-R'], { encoding: 'utf8' }).trim();
  return `ereceipt-auth (${version}) unstable; urgency=medium

  * Built from the ereceipt-auth tree by npm run package.

 -- ${MAINTAINER}  ${date}
`;
}

/** What the packaged binding needs of the system, as Debian names it. */
function sharedLibraryDepends() {
  return 'libc6, libgcc-s1, libstdc++6';
}

function control(arch, installedKiB) {
  return `Package: ereceipt-auth
Version: ${version}
Architecture: ${arch}
Maintainer: ${MAINTAINER}
Installed-Size: ${installedKiB}
Pre-Depends: init-system-helpers (>= 1.54~)
Depends: nodejs (>= 18), ca-certificates, adduser, ${sharedLibraryDepends()}
Section: net
Priority: optional
Description: eReceipt POS authentication with the Egyptian Tax Authority
 Logs a point-of-sale terminal in to the tax authority's eReceipt identity
 service (OAuth 2.0 client credentials with the POS headers), with the
 terminal's identity read from its EEPROM or serial co-processor and the
 credentials kept encrypted on the device, and keeps a valid access token in
 /run/ereceipt-auth/token.json for the POS application, renewing it before it
 expires. Runs as a systemd service or from its SysV init script.
`;
}

function md5sums(root) {
  const lines = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const rel = relative(root, path);
      if (rel === 'DEBIAN' || rel.startsWith('etc/')) continue; // conffiles are tracked by dpkg itself
      if (lstatSync(path).isSymbolicLink()) continue;
      if (statSync(path).isDirectory()) walk(path);
      else lines.push(`${createHash('md5').update(readFileSync(path)).digest('hex')}  ${rel}`);
    }
  };
  walk(root);
  return `${lines.join('\n')}\n`;
}

function duKiB(root) {
  let bytes = 0;
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (lstatSync(path).isSymbolicLink()) continue;
      if (statSync(path).isDirectory()) walk(path);
      else bytes += Math.ceil(statSync(path).size / 1024) * 1024;
    }
  };
  walk(root);
  return Math.ceil(bytes / 1024);
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const built = [];
for (const arch of Object.keys(ARCHES)) {
  const root = join(out, 'stage', arch);
  stageTree(root, arch);
  const tarName = `ereceipt-auth-${version}-linux-${arch}.tar.gz`;
  // The tarball: the same tree, owned by root, for images built without dpkg.
  execFileSync('tar', ['--owner=0', '--group=0', '--numeric-owner', '--sort=name', '--mtime=@0', '-czf', join(out, tarName), '-C', root, 'etc', 'lib', 'usr']);
  const debian = join(root, 'DEBIAN');
  mkdirSync(debian);
  file(root, 'DEBIAN/control', control(arch, duKiB(root)));
  file(root, 'DEBIAN/conffiles', '/etc/default/ereceipt-auth\n/etc/ereceipt-auth/config.json\n/etc/init.d/ereceipt-auth\n');
  file(root, 'DEBIAN/md5sums', md5sums(root));
  for (const script of ['postinst', 'prerm', 'postrm']) copyFileSync(join(here, 'debian', script), join(debian, script)), chmodSync(join(debian, script), 0o755);
  const debName = `ereceipt-auth_${version}_${arch}.deb`;
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', root, join(out, debName)], { stdio: ['ignore', 'ignore', 'inherit'] });
  built.push(debName, tarName);
}
rmSync(join(out, 'stage'), { recursive: true, force: true });
for (const name of built) console.log(`build/packages/${name} ${(statSync(join(out, name)).size / 1024).toFixed(0)} KiB`);
