export * from './lib/gateway-metrics';
export * from './lib/logger';
export * from './lib/observability.module';
export * from './lib/redact-query';
export * from './lib/request-observer';
export * from './lib/request-record';
export {
  answerUpstreamTry,
  failUpstreamTry,
  GatewayTracer,
  type TracedInstance,
} from './lib/tracing/gateway-tracer';
