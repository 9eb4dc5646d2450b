import { Module } from '@nestjs/common';
import { GatewayMetrics, RequestObserver } from '@helix/gateway-observability';
import { MetricsServer } from './metrics.server';
import { StatusBoard } from './status-board';

/** The metrics port (`/metrics` and the status page) and the status board the page reads. */
@Module({
  providers: [
    {
      provide: StatusBoard,
      useFactory: (metrics: GatewayMetrics, observer: RequestObserver) => {
        const board = new StatusBoard(metrics);
        observer.onUpstreamFailure((note) => board.noteFailure(note));
        return board;
      },
      inject: [GatewayMetrics, RequestObserver],
    },
    MetricsServer,
  ],
  exports: [StatusBoard],
})
export class StatusModule {}
