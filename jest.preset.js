/**
 * Shared Jest settings for every project. SWC compiles TypeScript and keeps the decorator
 * metadata that Nest's injection needs; the `@helix/source` condition resolves the workspace
 * libs to their sources, as TypeScript and esbuild do.
 */
module.exports = {
  testMatch: ['**/?(*.)+(spec|test).ts'],
  testEnvironment: 'node',
  testEnvironmentOptions: {
    customExportConditions: ['@helix/source', 'node', 'require', 'default'],
  },
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: {
          parser: { syntax: 'typescript', decorators: true },
          transform: { legacyDecorator: true, decoratorMetadata: true },
          target: 'es2023',
        },
        module: { type: 'commonjs' },
        sourceMaps: 'inline',
      },
    ],
  },
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json'],
  modulePathIgnorePatterns: ['<rootDir>/dist/'],
  coverageReporters: ['text-summary', 'html'],
};
