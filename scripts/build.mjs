// Builds the product (dist/ereceipt-auth.js, one file, nothing beside it) and the
// development tools that run it (build/: the demo and the identity simulator).
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { tweetnaclSecretboxOnly } from './tweetnacl-secretbox-only.mjs';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const common = { bundle: true, platform: 'node', target: 'node18', format: 'cjs', logLevel: 'warning', legalComments: 'none' };

// Code the product can never reach, cut to keep the bundle small: serialport's port
// listing, which needs udevadm; terminals name their port.
const unreachable = {
  name: 'unreachable',
  setup(b) {
    b.onResolve({ filter: /^\.\/linux-list$/ }, () => ({ path: 'linux-list', namespace: 'unreachable' }));
    b.onLoad({ filter: /.*/, namespace: 'unreachable' }, (args) => ({
      // Loading it is harmless (interop probes such as __esModule see undefined); using it says why it fails.
      contents: `module.exports = new Proxy({}, { get(_, key) { if (typeof key !== 'string' || key === '__esModule' || key === 'then') return undefined; throw new Error('${'$'}{args.path} is not in this build'); } });`,
      loader: 'js',
    }));
  },
};

// node-fetch 2 on Node's own URL: its whatwg-url fallback never runs on Node 18+.
// Its optional `encoding` (charset conversion for textConverted()) stays out.
const nodeFetchOnNodeUrl = {
  alias: { 'whatwg-url': fileURLToPath(new URL('whatwg-url-node.cjs', import.meta.url)) },
  external: ['encoding'],
};

// node-fetch's textConverted() needs the optional `encoding` package, which the
// product never installs nor calls: the CLI bundle keeps only its refusal, and so no
// start looks for `encoding` in the node_modules folders. Likewise blob() and the
// Blob class behind it, and following a redirect (the CLI never asks it to). The
// build fails if node-fetch no longer reads as expected.
const nodeFetchWithoutEncoding = {
  name: 'node-fetch-without-encoding',
  setup(b) {
    b.onLoad({ filter: /[\\/]node-fetch[\\/]lib[\\/]index\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const load = /^let convert;\ntry \{\n\tconvert = require\('encoding'\)\.convert;\n\} catch \(e\) \{\}\n/m;
      const convert = /^function convertBody\(buffer, headers\) \{\n[\s\S]*?\n\}\n/m;
      // Its own Blob class serves only Response.blob(), which the CLI never calls (1.2 KiB).
      const blobClass = /^const BUFFER = Symbol\('buffer'\);\nconst TYPE = Symbol\('type'\);\n\nclass Blob \{\n[\s\S]*?\nObject\.defineProperty\(Blob\.prototype, Symbol\.toStringTag, \{\n[^}]*\}\);\n/m;
      const blobMethod = /^\tblob\(\) \{\n[\s\S]*?new Blob\(\[\][\s\S]*?\n\t\},\n/m;
      // The CLI asks for redirect: 'manual' on every request (src/transport.ts): following one is never asked.
      const follow = /^\t\t\t\t\tcase 'follow':\n[\s\S]*?resolve\(fetch\(new Request\(locationURL, requestOpts\)\)\);\n\t\t\t\t\t\tfinalize\(\);\n\t\t\t\t\t\treturn;\n/m;
      if (![load, convert, blobClass, blobMethod, follow].every((pattern) => pattern.test(source))) throw new Error('node-fetch-without-encoding: node-fetch has changed: check the plugin');
      const contents = source
        .replace(load, 'let convert;\n')
        .replace(convert, "function convertBody() {\n\tthrow new Error('The package `encoding` must be installed to use the textConverted() function');\n}\n")
        .replace(blobClass, '')
        .replace(blobMethod, "\tblob() {\n\t\treturn Promise.reject(new Error('blob() is not built into ereceipt-auth'));\n\t},\n")
        .replace(follow, "\t\t\t\t\tcase 'follow':\n\t\t\t\t\t\treject(new FetchError('redirects are never followed here', 'unsupported-redirect'));\n\t\t\t\t\t\tfinalize();\n\t\t\t\t\t\treturn;\n");
      return { contents, loader: 'js' };
    });
  },
};

// serialport's JS goes into the bundle; its native binding is loaded from prebuilds/
// beside it, and its debug logging (off by default) is left out.
const serialportParts = {
  name: 'serialport-parts',
  setup(b) {
    b.onResolve({ filter: /^node-gyp-build$/ }, () => ({ path: fileURLToPath(new URL('native-loader.cjs', import.meta.url)) }));
    b.onResolve({ filter: /^debug$/ }, () => ({ path: fileURLToPath(new URL('no-debug.cjs', import.meta.url)) }));
  },
};

// Node modules loaded when first used rather than at start: zlib (node-fetch; the
// CLI asks for uncompressed answers), https (node-fetch; only an https:// address
// needs TLS) and crypto (tweetnacl's random source, needed only to write a
// credentials file).
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    b.onResolve({ filter: /^(node:)?zlib$/ }, (args) =>
      args.importer.includes('node-fetch') ? { path: fileURLToPath(new URL('lazy-zlib.cjs', import.meta.url)) } : undefined,
    );
    b.onResolve({ filter: /^(node:)?https$/ }, (args) =>
      args.importer.includes('node-fetch') ? { path: fileURLToPath(new URL('lazy-https.cjs', import.meta.url)) } : undefined,
    );
    b.onResolve({ filter: /^crypto$/ }, (args) =>
      args.importer.includes('tweetnacl') ? { path: fileURLToPath(new URL('lazy-crypto.cjs', import.meta.url)) } : undefined,
    );
  },
};

// The CLI loads the serial driver from serial-driver.js, and the proxy tunnel from
// proxy-agent.js, beside it (both built below): neither is loaded unless used.
const serialBeside = {
  name: 'serial-beside',
  setup(b) {
    b.onResolve({ filter: /\/serial-loader$/ }, () => ({ path: fileURLToPath(new URL('serial-loader-external.cjs', import.meta.url)) }));
    b.onResolve({ filter: /\/proxy-loader$/ }, () => ({ path: fileURLToPath(new URL('proxy-loader-external.cjs', import.meta.url)) }));
  },
};

// https-proxy-agent's trace output (the debug package) is off unless DEBUG is set: left out.
const noDebug = {
  name: 'no-debug',
  setup(b) {
    b.onResolve({ filter: /^debug$/ }, () => ({ path: fileURLToPath(new URL('no-debug.cjs', import.meta.url)) }));
  },
};

rmSync('dist', { recursive: true, force: true });
const result = await build({
  ...common,
  entryPoints: ['src/main.ts'],
  outfile: 'dist/ereceipt-auth.js',
  minify: true,
  banner: { js: '#!/usr/bin/env node' },
  define: { __VERSION__: JSON.stringify(version) },
  plugins: [unreachable, serialBeside, lazyBuiltins, tweetnaclSecretboxOnly, nodeFetchWithoutEncoding],
  // The reference TweetNaCl port is 14 KB smaller than nacl-fast; on a few hundred
  // bytes of credentials the speed difference is microseconds. Of it, only the
  // secret-key half is kept (scripts/tweetnacl-secretbox-only.mjs).
  alias: { tweetnacl: 'tweetnacl/nacl.js', ...nodeFetchOnNodeUrl.alias },
  external: nodeFetchOnNodeUrl.external,
  metafile: true,
});

await build({
  ...common,
  entryPoints: { demo: 'scripts/demo.ts', bench: 'scripts/bench.ts', soak: 'scripts/soak.ts', 'api-soak': 'scripts/api-soak.ts', platforms: 'scripts/platforms.ts', 'image-test': 'scripts/image-test.ts' },
  outdir: 'build',
  sourcemap: 'inline',
  alias: nodeFetchOnNodeUrl.alias,
  external: nodeFetchOnNodeUrl.external,
});

// The bench's floor: the same POST by node-fetch alone, bundled as the product is.
await build({
  ...common,
  entryPoints: ['scripts/bench-clients/node-fetch-only.ts'],
  outfile: 'build/bench-node-fetch.js',
  minify: true,
  plugins: [lazyBuiltins, nodeFetchWithoutEncoding],
  alias: nodeFetchOnNodeUrl.alias,
  external: nodeFetchOnNodeUrl.external,
});

chmodSync('dist/ereceipt-auth.js', 0o755);

// The serial driver and serialport's JS, loaded by the CLI only for "driver": "serial".
await build({
  ...common,
  entryPoints: ['hal/serial-driver.ts'],
  outfile: 'dist/serial-driver.js',
  minify: true,
  plugins: [unreachable, serialportParts],
});

// The proxy tunnel (https-proxy-agent), loaded by the CLI only when a proxy is in use.
await build({
  ...common,
  entryPoints: ['src/proxy-agent.ts'],
  outfile: 'dist/proxy-agent.js',
  minify: true,
  plugins: [noDebug],
});

// The in-process API (src/index.ts) for a POS application written for Node:
// require('/usr/lib/ereceipt-auth/index.js'). Not minified, and with node-fetch
// whole, since the application may read responses any way it likes.
await build({
  ...common,
  entryPoints: ['src/index.ts'],
  outfile: 'dist/index.js',
  define: { __VERSION__: JSON.stringify(version) },
  plugins: [serialportParts],
  alias: { tweetnacl: 'tweetnacl/nacl.js', ...nodeFetchOnNodeUrl.alias },
  external: nodeFetchOnNodeUrl.external,
});

// The identity-service simulator, for integrators' tests as for ours: a library when
// required, a server when run (test/identity-sim/main.ts). Not part of the packages.
await build({
  ...common,
  entryPoints: ['test/identity-sim/main.ts'],
  outfile: 'dist/identity-sim.js',
});

// The API's declarations, from the same source: dist/types/ and dist/index.d.ts.
const tsc = spawnSync(process.execPath, [fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url)), '-p', 'tsconfig.types.json'], { stdio: 'inherit' });
if (tsc.status !== 0) throw new Error('build: the declarations of dist/index.d.ts could not be made');
writeFileSync('dist/index.d.ts', "// The in-process API's types (src/index.ts); see README, 'For a POS application written for Node'.\nexport * from './types/src/index';\n");
writeFileSync('dist/identity-sim.d.ts', "// The identity-service simulator's types (test/identity-sim/); see README, 'The simulator as a test double'.\nexport * from './types/test/identity-sim/index';\n");

// The native binding of the serial driver, for the Linux architectures the
// terminals use (glibc): dist/prebuilds/linux-<arch>/.
const prebuilds = 'node_modules/@serialport/bindings-cpp/prebuilds';
for (const arch of ['linux-arm', 'linux-arm64', 'linux-x64']) {
  mkdirSync(`dist/prebuilds/${arch}`, { recursive: true });
  for (const file of readdirSync(`${prebuilds}/${arch}`).filter((f) => !f.includes('musl'))) {
    cpSync(`${prebuilds}/${arch}/${file}`, `dist/prebuilds/${arch}/${file}`);
  }
}

const size = Object.values(result.metafile.outputs)[0].bytes;
// What each input costs the bundle, for whoever must make room in it: npx esbuild --analyze is not needed.
mkdirSync('build', { recursive: true });
writeFileSync('build/ereceipt-auth.meta.json', JSON.stringify(result.metafile));
const kib = (file) => `${file} ${(statSync(file).size / 1024).toFixed(1)} KiB`;
console.log(`dist/ereceipt-auth.js ${(size / 1024).toFixed(1)} KiB, ${kib('dist/serial-driver.js')}, ${kib('dist/proxy-agent.js')}`);
