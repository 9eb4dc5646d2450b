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
import { UpstreamRegistry } from '@helix/gateway-router';

/**
 * Hot reload of GATEWAY_ROUTES_FILE on SIGHUP. A valid file takes effect for new requests,
 * while requests in flight finish on the old pools, which then close; an invalid one is
 * refused with one log line naming the route and the key, and the old table stays in force.
 */
@Injectable()
export class RouteReloader implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(RouteReloader.name);
  private readonly onSignal = () => this.reload();

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly registry: UpstreamRegistry,
    private readonly edge: EdgePolicies,
  ) {}

  onApplicationBootstrap(): void {
    process.on('SIGHUP', this.onSignal);
  }

  onModuleDestroy(): void {
    process.off('SIGHUP', this.onSignal);
  }

  /** Re-reads the route file; true when the new table is in force. */
  reload(): boolean {
    const file = this.config.GATEWAY_ROUTES_FILE;
    if (!file) {
      // SIGHUP reloads the TLS certificate too; only a signal that reloads nothing is worth a word.
      if (this.config.TLS_CERT_FILE === undefined) {
        this.logger.warn('SIGHUP: no GATEWAY_ROUTES_FILE to reload; the built-in table stays');
      }
      return false;
    }
    let routes;
    try {
      routes = loadRouteFile(file, this.config);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      this.logger.error(`reload refused, the previous route table stays in force: ${err.message}`);
      return false;
    }
    this.registry.replace(routes);
    this.edge.useRoutes(routes);
    this.logger.log(`route table reloaded from ${file}: ${routes.map((r) => r.prefix).join(', ')}`);
    return true;
  }
}
