export * from './lib/build-info';
export * from './lib/health.controller';
export * from './lib/health.module';
export * from './lib/upstream-health.checker';
