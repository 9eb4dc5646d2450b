import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig, type GatewayRoute } from '@helix/gateway-config';
import { createRouteMatcher } from './route-matcher';
import { UpstreamService } from '@helix/gateway-upstream';

/** A route with the service that answers it. */
export interface CompiledRoute extends GatewayRoute {
  readonly upstream: UpstreamService;
}

/**
 * A route table compiled once: the prefix matcher, and one UpstreamService per service name
 * (its instances, pools and proxies), shared by every route that names it.
 */
export class RouteTable {
  readonly routes: readonly CompiledRoute[];
  readonly services: ReadonlyMap<string, UpstreamService>;
  readonly match: (path: string) => CompiledRoute | undefined;

  constructor(routes: readonly GatewayRoute[], config: GatewayConfig) {
    const services = new Map<string, UpstreamService>();
    const outlier = {
      consecutiveFailures: config.OUTLIER_CONSECUTIVE_FAILURES,
      ejectionMs: config.OUTLIER_EJECTION_MS,
    };
    this.routes = routes.map((route) => {
      let upstream = services.get(route.service);
      if (!upstream) {
        // The first route of a service sets how its instances are balanced and found, and its cap.
        upstream = new UpstreamService(
          route.service,
          route.targets,
          route.balance,
          config.UPSTREAM_IDLE_TIMEOUT_MS,
          outlier,
          config.RETRY_BUDGET_PERCENT,
          route.maxInFlight,
          route.discovery,
        );
        services.set(route.service, upstream);
      }
      return { ...route, upstream };
    });
    this.services = services;
    this.match = createRouteMatcher(this.routes);
  }

  /** Out of service: requests in flight finish on the old pools, which then close. */
  retire(): void {
    for (const service of this.services.values()) service.retire();
  }
}

/**
 * The route table in force. Built once at boot from the configuration, replaced whole by a
 * hot reload: a request uses the table it started with to the end.
 */
@Injectable()
export class UpstreamRegistry implements OnModuleDestroy {
  private table: RouteTable;

  constructor(@Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig) {
    this.table = new RouteTable(config.routes, config);
  }

  get current(): RouteTable {
    return this.table;
  }

  get(name: string): UpstreamService | undefined {
    return this.table.services.get(name);
  }

  all(): UpstreamService[] {
    return [...this.table.services.values()];
  }

  /** Puts a new table in force and retires the old one. */
  replace(routes: readonly GatewayRoute[]): RouteTable {
    const old = this.table;
    this.table = new RouteTable(routes, this.config);
    old.retire();
    return this.table;
  }

  onModuleDestroy(): void {
    for (const service of this.table.services.values()) {
      for (const instance of service.instances) instance.close();
    }
  }
}
