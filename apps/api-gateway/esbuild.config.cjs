const esbuildPluginTsc = require('esbuild-plugin-tsc');

/**
 * esbuild alone drops the decorator metadata that Nest's injection reads, so TypeScript
 * compiles the files that carry decorators. Workspace libs resolve to their sources through
 * the `@helix/source` condition and are bundled; npm packages stay external.
 */
module.exports = {
  conditions: ['@helix/source'],
  sourcemap: true,
  target: 'node24',
  outExtension: { '.js': '.js' },
  plugins: [esbuildPluginTsc({ tsconfigPath: 'apps/api-gateway/tsconfig.app.json' })],
};
