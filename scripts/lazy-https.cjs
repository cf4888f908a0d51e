// Stands in for `https` inside node-fetch 2, which loads it with itself: the TLS
// stack is loaded when an https:// address is first asked for, not on every start.
exports.request = (...args) => require('node:https').request(...args);
