// An esbuild plugin that keeps, of TweetNaCl's reference port (tweetnacl/nacl.js),
// what the product uses: secretbox (XSalsa20-Poly1305), hash (SHA-512),
// randomBytes, verify and setPRNG. The public-key half (curve25519 box,
// ed25519 sign, scalarMult and the lowlevel table) is cut out: about a third of
// the library, which an IIFE keeps out of reach of tree-shaking. The build fails
// if anything kept still names what was cut.
import { readFile } from 'node:fs/promises';

const CUT_FUNCTIONS = new Set([
  'set25519', 'car25519', 'sel25519', 'pack25519', 'neq25519', 'par25519', 'unpack25519', 'A', 'Z', 'M', 'S',
  'inv25519', 'pow2523', 'crypto_scalarmult', 'crypto_scalarmult_base', 'crypto_box_keypair', 'crypto_box_beforenm',
  'crypto_box', 'crypto_box_open', 'add', 'cswap', 'pack', 'scalarmult', 'scalarbase', 'crypto_sign_keypair', 'modL',
  'reduce', 'crypto_sign', 'unpackneg', 'crypto_sign_open', 'checkBoxLengths',
]);
const CUT_VARS = new Set(['crypto_box_afternm', 'crypto_box_open_afternm']);
const CUT_API = /^nacl\.(lowlevel|scalarMult|box|sign)\b/;

/** Splits the library's body into its top-level statements (each starts in column 0). */
function statements(lines) {
  const chunks = [];
  for (const line of lines) {
    const starts = /^(function |var |nacl\.|\(function|\/\/|\/\*|'use strict')/.test(line);
    if (starts || chunks.length === 0) chunks.push([line]);
    else chunks[chunks.length - 1].push(line);
  }
  return chunks;
}

function cutName(first) {
  const fn = /^function (\w+)\(/.exec(first);
  if (fn) return CUT_FUNCTIONS.has(fn[1]) ? fn[1] : undefined;
  const v = /^var (\w+) = /.exec(first);
  if (v) return CUT_VARS.has(v[1]) ? v[1] : undefined;
  return CUT_API.test(first) ? first.slice(0, 30) : undefined;
}

export function trimTweetnacl(source) {
  const lines = source.split('\n');
  const kept = [];
  let cut = 0;
  for (const chunk of statements(lines)) {
    if (cutName(chunk[0]) !== undefined) cut += chunk.length;
    else kept.push(...chunk);
  }
  const text = kept.join('\n');
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  for (const name of [...CUT_FUNCTIONS, ...CUT_VARS]) {
    if (new RegExp(`(?<![\\w.$])${name}(?![\\w$])`).test(code)) throw new Error(`tweetnacl trim: kept code still uses ${name}`);
  }
  if (/nacl\.(lowlevel|scalarMult|box|sign)\b/.test(code)) throw new Error('tweetnacl trim: kept code still uses the public-key API');
  if (cut < 300) throw new Error(`tweetnacl trim: only ${cut} lines cut, the library has changed: check the plugin`);
  return text;
}

export const tweetnaclSecretboxOnly = {
  name: 'tweetnacl-secretbox-only',
  setup(b) {
    b.onLoad({ filter: /[\\/]tweetnacl[\\/]nacl\.js$/ }, async (args) => ({ contents: trimTweetnacl(await readFile(args.path, 'utf8')), loader: 'js' }));
  },
};
