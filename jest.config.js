/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.(t|j|mj)s$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  testTimeout: 30000,
  // Most tests wait on child processes, sockets and timers rather than the CPU: two
  // workers halve the run on two cores (jest's default here would be one).
  maxWorkers: 2,
  // The default report, then the list of tests skipped for want of a tool or of root.
  reporters: ['default', '<rootDir>/test/helpers/not-exercised-reporter.js'],
};
