// One Redis and one local cluster for the run (the @x/testing preset); the checks run one file at
// a time because each spawns heavy children (npm, tsc, a package's whole jest suite).
/** @type {import('jest').Config} */
module.exports = {
  ...require('@x/testing/jest-preset'),
  maxWorkers: 1,
  testTimeout: 300_000,
};
