/**
 * The boundary between the module and the terminal's hardware. Drivers (EEPROM,
 * serial co-processor, simulated) implement `DeviceHal`; nothing outside the
 * composition root knows which one it talks to.
 *
 * Failures are thrown as `HalError` (hal/errors.ts) with code `ERR_HAL_UNAVAILABLE` (no
 * device at the configured path, exit 69) or `ERR_HAL_BAD_DATA` (the device
 * answered, but with something that is not a valid identity, exit 65).
 */

/** What the terminal says it is, as sent to the identity service. */
export interface DeviceIdentity {
  /** `posserial`: the serial number, printable ASCII, 1–100 characters. */
  readonly serial: string;
  /** `posmodelframework`: the model framework, printable ASCII, 1–10 characters. */
  readonly modelFramework: string;
}

export interface DeviceHal {
  /** The driver and where it reads from, for `status` and messages: `eeprom /sys/…/eeprom`. */
  readonly description: string;

  /** Reads the identity from the hardware. Each call reads the device anew. */
  identity(): Promise<DeviceIdentity>;

  /**
   * A secret the hardware keeps and never shows elsewhere (a fused key, a secure
   * element's answer), mixed into the key that encrypts the credentials file.
   * Drivers for hardware without one leave it out.
   */
  deviceSecret?(): Promise<Uint8Array>;

  /** Releases the device (a serial port, say). Safe to call more than once. */
  close(): Promise<void>;
}
