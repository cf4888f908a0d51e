// Stands in for `crypto` inside tweetnacl in dist/ereceipt-auth.js: tweetnacl looks
// for randomBytes when it loads, but only writing a credentials file needs random
// bytes, so node:crypto is loaded then, not on every start.
exports.randomBytes = (length) => require('node:crypto').randomBytes(length);
