import cluster, { type Worker } from 'node:cluster';
import { createServer } from 'node:http';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import { ConfigError, type GatewayConfig, loadRouteFile } from '@helix/gateway-config';
import { createMetricsPortListener, readWorkers, StatusSampler } from '@helix/gateway-status';
import { FolderWatch, hashFile } from './folder-watch';
import { DRAIN_MESSAGE } from './graceful-shutdown';
import { ROUTES_CHANGED_MESSAGE, ROUTES_POLL_MS } from './route-reloader';

/** More crashes than this within CRASH_WINDOW_MS is a crash loop: the supervisor gives up. */
const MAX_CRASHES = 5;
const CRASH_WINDOW_MS = 60_000;

/** How many worker processes GATEWAY_WORKERS asks for (`auto`: one per core). */
export function workerCount(config: Pick<GatewayConfig, 'GATEWAY_WORKERS'>): number {
  return config.GATEWAY_WORKERS === 'auto' ? availableParallelism() : config.GATEWAY_WORKERS;
}

/**
 * The primary process of GATEWAY_WORKERS > 1: forks the workers, which share the public port
 * (node:cluster), replaces a worker that dies, gives up on a crash loop, passes SIGTERM/SIGINT
 * on so each worker drains, and serves the workers' metrics, added up, on METRICS_PORT, with the status page drawn from them.
 */
export function superviseWorkers(config: GatewayConfig, logger: Logger): void {
  const wanted = workerCount(config);
  const crashes: number[] = [];
  let stopping = false;

  const fork = (): Worker => cluster.fork();

  cluster.on('online', (worker) => logger.info({ worker: worker.process.pid }, 'worker started'));
  // A worker still starting when the drain began could not hear it: tell it again once it listens.
  cluster.on('listening', (worker) => {
    if (stopping) worker.send(DRAIN_MESSAGE);
  });
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        logger.info('every worker has drained, exiting');
        process.exit(0);
      }
      return;
    }
    const now = Date.now();
    crashes.push(now);
    while (crashes.length > 0 && crashes[0] < now - CRASH_WINDOW_MS) crashes.shift();
    if (crashes.length > MAX_CRASHES) {
      logger.fatal(
        { worker: worker.process.pid, code, signal },
        `crash loop: ${crashes.length} workers died within ${CRASH_WINDOW_MS / 1000} s, giving up`,
      );
      for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGKILL');
      process.exit(1);
    }
    logger.error({ worker: worker.process.pid, code, signal }, 'worker died, starting another');
    fork();
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      stopping = true;
      logger.info({ signal }, 'every worker drains');
      for (const worker of Object.values(cluster.workers ?? {})) worker?.send(DRAIN_MESSAGE);
      for (const again of ['SIGTERM', 'SIGINT'] as const) {
        process.once(again, () => {
          for (const worker of Object.values(cluster.workers ?? {}))
            worker?.process.kill('SIGKILL');
          process.exit(1);
        });
      }
    });
  }

  // A route-file reload reaches every worker (each holds its own route table).
  process.on('SIGHUP', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGHUP');
  });

  if (config.GATEWAY_ROUTES_FILE) watchRouteFile(config, config.GATEWAY_ROUTES_FILE, logger);
  if (config.METRICS_PORT !== 0) serveClusterMetrics(config, logger);
  for (let i = 0; i < wanted; i++) fork();
}

/**
 * The route file's watch for every worker at once: the primary validates a changed file once,
 * logs a refusal once, and tells the workers to load a valid one.
 */
function watchRouteFile(config: GatewayConfig, file: string, logger: Logger): void {
  let seen = hashFile(file);
  const onChange = () => {
    const now = hashFile(file);
    if (now === undefined || now === seen) return;
    seen = now;
    try {
      loadRouteFile(file, config);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      logger.error(
        `route file changed: reload refused, the workers keep their table: ${err.message}`,
      );
      return;
    }
    logger.info(`route file changed: every worker reloads ${file}`);
    for (const worker of Object.values(cluster.workers ?? {})) worker?.send(ROUTES_CHANGED_MESSAGE);
  };
  new FolderWatch([file], onChange, ROUTES_POLL_MS, (message) => logger.warn(message)).start();
}

function serveClusterMetrics(config: GatewayConfig, logger: Logger): void {
  const registry = new AggregatorRegistry();
  const source = { contentType: registry.contentType, metrics: () => registry.clusterMetrics() };
  const sampler = new StatusSampler(readWorkers(), (err) =>
    logger.warn(`status sample failed: ${err.message}`),
  );
  const server = createServer(createMetricsPortListener(source, sampler));
  server.on('error', (err: NodeJS.ErrnoException) => {
    logger.fatal(
      `Cannot listen on ${config.HOST}:${config.METRICS_PORT} (METRICS_PORT): ${err.code ?? err.message}`,
    );
    process.exit(1);
  });
  server.listen(config.METRICS_PORT, config.HOST, () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.METRICS_PORT;
    sampler.start();
    logger.info(
      `metrics on http://${config.HOST}:${port}/metrics, status on /status (all workers)`,
    );
  });
}
