export * from './lib/config.module';
export * from './lib/config.tokens';
export * from './lib/env.schema';
export * from './lib/load-config';
export * from './lib/route.schema';
export * from './lib/tracing.schema';
