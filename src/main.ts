import { runCli } from './cli';

// The bundle's entry point: the process's own streams, and the exit status as
// process.exitCode so that stdout drains before the process ends.
runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  // A getter: opening stdin costs start-up time that only provision needs.
  get stdin() {
    return process.stdin;
  },
  env: process.env,
}).then((status) => {
  process.exitCode = status;
});
