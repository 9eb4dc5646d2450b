const esbuildPluginTsc = require('esbuild-plugin-tsc');

/**
 * esbuild alone drops the decorator metadata that Nest's injection reads, so TypeScript
 * compiles the files that carry decorators. Workspace libs resolve to their sources through
 * the `@helix/source` condition and are bundled; npm packages stay external.
 *
 * TypeScript emits those files as ES modules (`forceEsm`), as esbuild reads the others, so
 * esbuild hoists every lib into one scope: a call from one lib into another is a direct call,
 * not a getter on a CommonJS re-export object per call (about 1 µs a proxied request,
 * profiled). `keepNames` keeps the class names Nest logs, which hoisting would rename.
 */
module.exports = {
  conditions: ['@helix/source'],
  sourcemap: true,
  target: 'node24',
  keepNames: true,
  outExtension: { '.js': '.js' },
  plugins: [
    esbuildPluginTsc({ tsconfigPath: 'apps/api-gateway/tsconfig.app.json', forceEsm: true }),
  ],
};
