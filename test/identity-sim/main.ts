// `node build/identity-sim.js --terminals FILE.json [--port N] [--lifetime S]`: the
// identity-service simulator as its own process, for benchmarks and manual runs.
import { main } from './cli';

main(process.argv.slice(2)).then((status) => {
  process.exitCode = status;
});
