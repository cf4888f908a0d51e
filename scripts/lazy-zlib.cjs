// Stands in for node:zlib inside node-fetch in dist/ereceipt-auth.js: the CLI asks
// for uncompressed answers (compress: false), so zlib is loaded only if an answer
// ever needs inflating after all.
let zlib;
const load = () => (zlib ??= require('node:zlib'));

module.exports = {
  get Z_SYNC_FLUSH() {
    return load().Z_SYNC_FLUSH;
  },
  createGunzip: (...args) => load().createGunzip(...args),
  createInflate: (...args) => load().createInflate(...args),
  createInflateRaw: (...args) => load().createInflateRaw(...args),
  createBrotliDecompress: (...args) => load().createBrotliDecompress(...args),
};
