// Stands in for whatwg-url inside node-fetch 2: node-fetch reads `Url.URL ||
// whatwgUrl.URL`, and every Node we support (18+) has its own URL, so the package
// (and its 260 KB tr46 table) would never run.
exports.URL = require('node:url').URL;
