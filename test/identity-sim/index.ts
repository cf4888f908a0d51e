// The identity-service simulator: a faithful local stand-in for the Egyptian Tax
// Authority's identity service, used by the tests, the demo and the benchmarks. A
// test fixture, not part of the product; loading it starts nothing.
export { main } from './cli';
export { startIdentitySim } from './server';
export { generateSigningKey, verifySimToken } from './tokens';
export type { IdentitySim, IdentitySimOptions, SimFault, SimRequestRecord, SimTerminal } from './types';
