/** Black-box tests: the built gateway as a child process, real stub upstreams on 127.0.0.1:0. */
module.exports = {
  displayName: 'api-gateway-e2e',
  preset: '../../jest.preset.js',
  testMatch: ['<rootDir>/src/**/*.e2e.spec.ts'],
  testTimeout: 30_000,
  maxWorkers: 2,
};
