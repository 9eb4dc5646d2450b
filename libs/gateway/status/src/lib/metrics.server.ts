import cluster from 'node:cluster';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { AggregatorRegistry } from 'prom-client';
import { GATEWAY_CONFIG, type GatewayConfig } from '@helix/gateway-config';
import { GatewayMetrics } from '@helix/gateway-observability';
import { createMetricsPortListener } from './metrics-port';
import { StatusBoard } from './status-board';
import { answerStatusRequests } from './status-cluster';
import { StatusSampler } from './status-sampler';

/**
 * Prometheus `/metrics` and the status page on METRICS_PORT, a server of its own: neither
 * shows on the public port. METRICS_PORT=0 leaves it off.
 */
@Injectable()
export class MetricsServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(MetricsServer.name);
  private server: Server | undefined;
  private sampler: StatusSampler | undefined;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly metrics: GatewayMetrics,
    private readonly board: StatusBoard,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (this.config.METRICS_PORT === 0) return;
    const registry = this.metrics.registry;
    if (cluster.isWorker) {
      // The primary serves every worker's metrics, added up (see superviseWorkers). prom-client
      // starts answering its requests only once an AggregatorRegistry exists in the worker.
      new AggregatorRegistry();
      AggregatorRegistry.setRegistries([registry]);
      answerStatusRequests(this.board);
      return;
    }
    const sampler = new StatusSampler(
      async () => [await this.board.read()],
      (err) => this.logger.warn(`status sample failed: ${err.message}`),
    );
    const server = createServer(createMetricsPortListener(registry, sampler));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new Error(
            `Cannot listen on ${this.config.HOST}:${this.config.METRICS_PORT} (METRICS_PORT): ${err.code ?? err.message}`,
          ),
        ),
      );
      server.listen(this.config.METRICS_PORT, this.config.HOST, resolve);
    });
    this.server = server;
    this.sampler = sampler;
    sampler.start();
    const { address, port } = server.address() as AddressInfo;
    this.logger.log(`metrics on http://${address}:${port}/metrics, status on /status`);
  }

  async onApplicationShutdown(): Promise<void> {
    this.sampler?.stop();
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
