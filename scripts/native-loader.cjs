// Stands in for node-gyp-build inside dist/ereceipt-auth.js: serialport's native
// binding cannot live in the JS bundle, so it is loaded from prebuilds/<platform>-<arch>/
// beside the bundle, where `npm run build` stages it.
const { existsSync } = require('node:fs');
const { join } = require('node:path');

module.exports = function loadNativeBinding() {
  const dir = join(__dirname, 'prebuilds', `${process.platform}-${process.arch}`);
  const armVersion = process.config.variables.arm_version;
  const names =
    process.arch === 'arm'
      ? [`node.napi.armv${armVersion}.node`, 'node.napi.armv7.node', 'node.napi.armv6.node']
      : process.arch === 'arm64'
        ? ['node.napi.armv8.node']
        : ['node.napi.glibc.node', 'node.napi.node'];
  for (const name of names) {
    const file = join(dir, name);
    if (existsSync(file)) return require(file);
  }
  throw new Error(`${join(dir, names[0])} is missing`);
};
