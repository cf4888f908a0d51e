// The identity-service simulator: a faithful local stand-in for the Egyptian Tax
// Authority's identity service, with a receipts endpoint that checks its tokens.
// Used by our tests, the demo and the benchmarks, and built as dist/identity-sim.js
// for the POS application's own tests. Not in the packages; loading it starts nothing.
export { main } from './cli';
export { startIdentitySim } from './server';
export { generateSigningKey, verifySimToken } from './tokens';
export { CONTROL_PATH, type SimControl } from './control';
export { RECEIPTS_PATH } from './receipts';
export type { IdentitySim, IdentitySimOptions, SimFault, SimReceiptChances, SimReceiptFault, SimReceiptRecord, SimRequestRecord, SimTerminal } from './types';
