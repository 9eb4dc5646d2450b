export * from './lib/dns-discovery';
export * from './lib/gateway-lifecycle';
export * from './lib/gateway-pipeline';
export * from './lib/router.module';
export * from './lib/upstream-registry';
