import { type DynamicModule, Global, Module } from '@nestjs/common';
import type { Logger } from 'pino';
import { GatewayMetrics } from './gateway-metrics';
import { ROOT_LOGGER } from './logger';
import { RequestObserver } from './request-observer';
import { GATEWAY_VERSION, GatewayTracer } from './tracing/gateway-tracer';

/** Access log, metrics and tracing, available to every lib. */
@Global()
@Module({})
export class ObservabilityModule {
  /** `version` is the gateway's, the `service.version` of its spans. */
  static forRoot(logger: Logger, version: string): DynamicModule {
    return {
      module: ObservabilityModule,
      providers: [
        { provide: ROOT_LOGGER, useValue: logger },
        { provide: GATEWAY_VERSION, useValue: version },
        { provide: GatewayMetrics, useValue: new GatewayMetrics() },
        RequestObserver,
        GatewayTracer,
      ],
      exports: [ROOT_LOGGER, GatewayMetrics, RequestObserver, GatewayTracer],
    };
  }
}
