import cluster from 'node:cluster';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import {
  ConfigError,
  GATEWAY_CONFIG,
  type GatewayConfig,
  loadRouteFile,
} from '@helix/gateway-config';
import { EdgePolicies } from '@helix/gateway-edge';
import { GatewayMetrics } from '@helix/gateway-observability';
import { DnsDiscovery, UpstreamRegistry } from '@helix/gateway-router';
import { FolderWatch, hashFile } from './folder-watch';

/** What the primary of GATEWAY_WORKERS sends its workers when the route file has changed. */
export const ROUTES_CHANGED_MESSAGE = 'helix:routes-changed';
/** The safety-net poll of the route file; a change is seen at once by the folder's watch. */
export const ROUTES_POLL_MS = 10_000;

/**
 * Hot reload of GATEWAY_ROUTES_FILE, on SIGHUP and whenever the file changes (FolderWatch: an
 * editor's save or rename-over, a ConfigMap's `..data` swap). A valid file takes effect for new
 * requests, while requests in flight finish on the old pools, which then close; an invalid one
 * is refused with one log line naming the route and the key, and the old table stays in force.
 * A change is applied only when the content differs (SHA-256). With workers, the primary
 * watches and validates once, then tells each worker (superviseWorkers).
 */
@Injectable()
export class RouteReloader implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(RouteReloader.name);
  private readonly onSignal = () => this.reload('SIGHUP');
  private readonly onMessage = (message: unknown) => {
    if (message === ROUTES_CHANGED_MESSAGE) this.reload('route file changed');
  };
  private watch: FolderWatch | undefined;
  /** The content last looked at, applied or refused. */
  private seen: string | undefined;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly registry: UpstreamRegistry,
    private readonly edge: EdgePolicies,
    private readonly metrics: GatewayMetrics,
    private readonly discovery: DnsDiscovery,
  ) {}

  onApplicationBootstrap(): void {
    process.on('SIGHUP', this.onSignal);
    const file = this.config.GATEWAY_ROUTES_FILE;
    this.seen = file && hashFile(file);
    this.metrics.routeTable.labels(this.seen ?? 'none').set(1);
    if (!file) return;
    if (cluster.isWorker) {
      process.on('message', this.onMessage);
    } else {
      this.watch = new FolderWatch([file], () => this.reloadIfChanged(), ROUTES_POLL_MS);
      this.watch.start();
    }
  }

  onModuleDestroy(): void {
    process.off('SIGHUP', this.onSignal);
    process.off('message', this.onMessage);
    this.watch?.stop();
  }

  private reloadIfChanged(): void {
    const file = this.config.GATEWAY_ROUTES_FILE as string;
    const seen = hashFile(file);
    if (seen === undefined || seen === this.seen) return;
    this.reload('route file changed');
  }

  /** Re-reads the route file; true when the new table is in force. */
  reload(reason: string): boolean {
    const file = this.config.GATEWAY_ROUTES_FILE;
    if (!file) {
      // SIGHUP reloads the TLS certificate too; only a signal that reloads nothing is worth a word.
      if (this.config.TLS_CERT_FILE === undefined) {
        this.logger.warn('SIGHUP: no GATEWAY_ROUTES_FILE to reload; the built-in table stays');
      }
      return false;
    }
    const seen = hashFile(file);
    let routes;
    try {
      routes = loadRouteFile(file, this.config);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      this.seen = seen;
      this.metrics.routeReloads.labels('refused').inc();
      this.logger.error(
        `${reason}: reload refused, the previous route table stays in force: ${err.message}`,
      );
      return false;
    }
    this.registry.replace(routes);
    // The new table's discovered services start from their names: look them up at once.
    this.discovery.refreshNow();
    this.edge.useRoutes(routes);
    this.seen = seen;
    this.metrics.routeReloads.labels('applied').inc();
    this.metrics.routeTable.reset();
    this.metrics.routeTable.labels(seen ?? 'none').set(1);
    this.logger.log(
      `${reason}: route table reloaded from ${file}: ${routes.map((r) => r.prefix).join(', ')}`,
    );
    return true;
  }
}
