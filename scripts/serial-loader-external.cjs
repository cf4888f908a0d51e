// Stands in for src/serial-loader.ts inside dist/ereceipt-auth.js: the serial driver
// and serialport's JS live in serial-driver.js beside the bundle, next to the
// native binding in prebuilds/, so terminals without a serial HAL ship neither.
const { join } = require('node:path');

exports.loadSerialDriver = async () => require(join(__dirname, 'serial-driver.js'));
