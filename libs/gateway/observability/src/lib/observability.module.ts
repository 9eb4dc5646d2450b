import { type DynamicModule, Global, Module } from '@nestjs/common';
import type { Logger } from 'pino';
import { GatewayMetrics } from './gateway-metrics';
import { MetricsServer } from './metrics.server';
import { RequestObserver, ROOT_LOGGER } from './request-observer';
import { StatusBoard } from './status-board';

/** Access log, metrics, the status page and the metrics server, available to every lib. */
@Global()
@Module({})
export class ObservabilityModule {
  static forRoot(logger: Logger): DynamicModule {
    const metrics = new GatewayMetrics();
    return {
      module: ObservabilityModule,
      providers: [
        { provide: ROOT_LOGGER, useValue: logger },
        { provide: GatewayMetrics, useValue: metrics },
        { provide: StatusBoard, useValue: new StatusBoard(metrics) },
        RequestObserver,
        MetricsServer,
      ],
      exports: [ROOT_LOGGER, GatewayMetrics, RequestObserver, StatusBoard],
    };
  }
}
