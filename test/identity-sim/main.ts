// dist/identity-sim.js: the identity-service simulator for an integrator's tests.
// Loaded with require(), it is a library and starts nothing (README, "The simulator as
// a test double"); run as `node dist/identity-sim.js --terminals FILE.json …`, it
// serves until SIGTERM or SIGINT (see --help).
import { main } from './cli';

export * from './index';

if (require.main === module) {
  main(process.argv.slice(2)).then((status) => {
    process.exitCode = status;
  });
}
