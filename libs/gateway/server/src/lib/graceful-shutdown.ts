import cluster from 'node:cluster';
import type { Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { GATEWAY_CONFIG, type GatewayConfig } from '@helix/gateway-config';
import { GatewayLifecycle, GatewayPipeline } from '@helix/gateway-router';
import type { TlsConnections } from './tls-connections';

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/** What the primary of GATEWAY_WORKERS sends a worker to make it drain. */
export const DRAIN_MESSAGE = 'helix:drain';

/**
 * Drains the gateway on SIGTERM or SIGINT (CONTRACT.md "Hard edges"):
 * 1. `/health` answers 503 `draining` at once, so load balancers stop sending traffic, and
 *    every HTTP/2 session gets a GOAWAY (its streams in flight finish);
 * 2. for SHUTDOWN_DELAY_MS the gateway keeps serving, while they catch up;
 * 3. it stops accepting, closes idle keep-alive connections and asks busy ones to close after
 *    their response;
 * 4. in-flight requests, streams and WebSockets get up to SHUTDOWN_TIMEOUT_MS, then whatever is
 *    left is cut;
 * 5. Nest closes the upstream pools, Redis and the metrics server, and the process exits 0.
 * A second signal exits at once.
 */
export function installGracefulShutdown(
  app: NestExpressApplication,
  tlsConnections?: TlsConnections,
): void {
  const config = app.get<GatewayConfig>(GATEWAY_CONFIG);
  const lifecycle = app.get(GatewayLifecycle);
  const pipeline = app.get(GatewayPipeline);
  const server: Server = app.getHttpServer();
  const logger = new Logger('Shutdown');

  const drain = async (signal: string): Promise<void> => {
    lifecycle.draining = true;
    tlsConnections?.goAway();
    logger.log(`${signal}: draining, still accepting for ${config.SHUTDOWN_DELAY_MS} ms`);
    await sleep(config.SHUTDOWN_DELAY_MS);
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    logger.log(
      `stopped accepting; waiting up to ${config.SHUTDOWN_TIMEOUT_MS} ms for in-flight requests`,
    );
    const finished = await Promise.race([
      closed.then(() => true),
      sleep(config.SHUTDOWN_TIMEOUT_MS).then(() => false),
    ]);
    if (!finished) {
      logger.warn('drain timeout: closing the connections still open');
      if (tlsConnections) tlsConnections.destroyAll();
      else server.closeAllConnections();
      pipeline.closeTunnels();
    }
    await app.close();
    logger.log('drained, exiting');
  };

  let draining = false;
  const start = (reason: string): void => {
    if (draining) return;
    draining = true;
    drain(reason).then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error(`shutdown failed: ${(err as Error).message}`, (err as Error).stack);
        process.exit(1);
      },
    );
  };
  for (const signal of SIGNALS) {
    process.on(signal, () => {
      if (draining) process.exit(1);
      start(signal);
    });
  }
  // A worker of GATEWAY_WORKERS is told to drain by its primary, which a terminal's Ctrl-C
  // may have reached too: one drain either way, and only a second signal cuts it short.
  if (cluster.isWorker) {
    process.on('message', (message) => {
      if (message === DRAIN_MESSAGE) start('drain requested by the primary');
    });
  }
}
