export * from './lib/client-ip';
export * from './lib/cors.policy';
export * from './lib/edge-policies';
export * from './lib/edge.module';
export * from './lib/error-response';
export * from './lib/rate-limiter';
export * from './lib/request-id';
export * from './lib/security-headers';
