// Shared jest set-up: one Redis (and one local cluster) per test run, started by @x/testing.
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: { target: 'ES2022', module: 'commonjs', moduleResolution: 'node', verbatimModuleSyntax: false, isolatedModules: true, esModuleInterop: true, lib: ['ES2022', 'ESNext.Disposable', 'DOM'] } }],
  },
  globalSetup: require.resolve('./dist/global-setup.js'),
  globalTeardown: require.resolve('./dist/global-teardown.js'),
  testTimeout: 60_000,
  maxWorkers: 2,
};
