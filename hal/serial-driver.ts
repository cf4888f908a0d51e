// The serial driver as a file of its own (dist/serial-driver.js), beside the main
// bundle and the native binding it needs: terminals that read an EEPROM ship neither.
export { createSerialHal } from './serial';
export { LinuxBinding } from '@serialport/bindings-cpp/dist/linux';
