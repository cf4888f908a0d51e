/** The module's public surface for a Node.js POS application. */
export { createTokenManager, isReplayableBody, type PosTokenManager, type PosTokenManagerOptions } from './pos-api';
export type { Logger } from './log';
export { loadConfig, parseConfig, type Config, type HalConfig } from './config';
export { EreceiptError, exitStatusOf, isEreceiptError, isTransient, type ErrorCode } from './errors';
export type { DeviceHal, DeviceIdentity } from '../hal/types';
export type { ClockOffset, ManagerState } from './token-manager';
export { openHal } from './open-hal';
export { readTokenFile, type TokenFile } from './token-file';
