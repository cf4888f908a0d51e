// Stands in for the `debug` package inside dist/ereceipt-auth.js: serialport's trace
// output is off unless DEBUG is set, and the terminal has `status --trace` instead.
module.exports = function createDebug() {
  const debug = () => {};
  debug.enabled = false;
  debug.extend = createDebug;
  return debug;
};
