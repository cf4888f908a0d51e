/**
 * Loads the serial driver. From source it is an ordinary import; the CLI build
 * replaces this file with scripts/serial-loader-external.cjs, which loads the
 * driver from serial-driver.js beside the bundle.
 */
export function loadSerialDriver(): Promise<typeof import('../hal/serial-driver')> {
  return import('../hal/serial-driver');
}
