import { type DynamicModule, Global, Module } from '@nestjs/common';
import type { Logger } from 'pino';
import { GatewayMetrics } from './gateway-metrics';
import { RequestObserver, ROOT_LOGGER } from './request-observer';

/** Access log and metrics, available to every lib. */
@Global()
@Module({})
export class ObservabilityModule {
  static forRoot(logger: Logger): DynamicModule {
    return {
      module: ObservabilityModule,
      providers: [
        { provide: ROOT_LOGGER, useValue: logger },
        { provide: GatewayMetrics, useValue: new GatewayMetrics() },
        RequestObserver,
      ],
      exports: [ROOT_LOGGER, GatewayMetrics, RequestObserver],
    };
  }
}
