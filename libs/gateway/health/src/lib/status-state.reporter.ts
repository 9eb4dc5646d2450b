import { Inject, Injectable } from '@nestjs/common';
import { OverloadMonitor } from '@helix/gateway-edge';
import { GatewayLifecycle, UpstreamRegistry } from '@helix/gateway-router';
import { StatusBoard } from '@helix/gateway-status';
import { GATEWAY_BUILD_INFO, type GatewayBuildInfo } from './build-info';

/**
 * Hands the status page what this lib sees and the status lib does not: the route
 * table in force, each instance's health, ejection and addresses, the drain and the overload
 * monitor. Read once a second by the sampler, never on the request path.
 */
@Injectable()
export class StatusStateReporter {
  constructor(
    board: StatusBoard,
    registry: UpstreamRegistry,
    lifecycle: GatewayLifecycle,
    overload: OverloadMonitor,
    @Inject(GATEWAY_BUILD_INFO) build: GatewayBuildInfo,
  ) {
    board.useLiveState(() => {
      const now = Date.now();
      const table = registry.current;
      return {
        version: build.version,
        draining: lifecycle.draining,
        overloaded: overload.overloaded,
        routes: table.routes.map(({ prefix, service }) => ({ prefix, service })),
        // SECURITY: addresses, for the metrics port only; the public port never shows them.
        services: [...table.services.values()].map((service) => ({
          name: service.name,
          instances: service.instances.map((i) => ({
            instance: i.index,
            address: i.url.host,
            health: i.health,
            ejected: i.ejectedUntil > now,
            inFlight: i.inFlight,
            failuresInARow: i.failuresInARow,
          })),
        })),
      };
    });
  }
}
