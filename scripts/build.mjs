// Builds the product (dist/ereceipt-auth.js, one file, nothing beside it) and the
// development tools that run it (build/: the demo and the identity simulator).
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const common = { bundle: true, platform: 'node', target: 'node18', format: 'cjs', logLevel: 'warning', legalComments: 'none' };

// Code the product can never reach, cut to keep the bundle inside its 100 KiB:
// - fetch-blob's 100 KB web-streams polyfill, used only where the runtime lacks
//   ReadableStream (every Node we support, 18+, has it);
// - node-fetch's multipart parser, used only by Response.formData(), never called.
const unreachable = {
  name: 'unreachable',
  setup(b) {
    b.onResolve({ filter: /^web-streams-polyfill/ }, () => ({ path: 'web-streams-polyfill', namespace: 'unreachable' }));
    b.onResolve({ filter: /multipart-parser\.js$/ }, () => ({ path: 'multipart-parser', namespace: 'unreachable' }));
    b.onLoad({ filter: /.*/, namespace: 'unreachable' }, (args) => ({
      contents: `module.exports = new Proxy({}, { get() { throw new Error('${'$'}{args.path} is not in this build'); } });`,
      loader: 'js',
    }));
  },
};

const result = await build({
  ...common,
  entryPoints: ['src/main.ts'],
  outfile: 'dist/ereceipt-auth.js',
  minify: true,
  banner: { js: '#!/usr/bin/env node' },
  define: { __VERSION__: JSON.stringify(version) },
  plugins: [unreachable],
  // The reference TweetNaCl port is 14 KB smaller than nacl-fast; on a few hundred
  // bytes of credentials the speed difference is microseconds.
  alias: { tweetnacl: 'tweetnacl/nacl.js' },
  metafile: true,
});

await build({
  ...common,
  entryPoints: { demo: 'scripts/demo.ts', bench: 'scripts/bench.ts', 'identity-sim': 'scripts/identity-sim-main.ts' },
  outdir: 'build',
  sourcemap: 'inline',
});

const size = Object.values(result.metafile.outputs)[0].bytes;
console.log(`dist/ereceipt-auth.js ${(size / 1024).toFixed(1)} KiB`);
