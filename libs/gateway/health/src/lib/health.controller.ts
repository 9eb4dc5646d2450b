import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  Controller,
  Get,
  Header,
  Inject,
  NotFoundException,
  Param,
  Req,
  Res,
} from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '@helix/gateway-config';
import { OverloadMonitor } from '@helix/gateway-edge';
import { GatewayLifecycle, GatewayPipeline, UpstreamRegistry } from '@helix/gateway-router';
import { GATEWAY_BUILD_INFO, type GatewayBuildInfo } from './build-info';
import { UpstreamHealthChecker } from './upstream-health.checker';

/** The gateway's own endpoints: liveness, health, metadata, and each service's health. */
@Controller()
export class HealthController {
  private readonly startedAt = Date.now();

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(GATEWAY_BUILD_INFO) private readonly build: GatewayBuildInfo,
    private readonly checker: UpstreamHealthChecker,
    private readonly pipeline: GatewayPipeline,
    private readonly lifecycle: GatewayLifecycle,
    private readonly registry: UpstreamRegistry,
    private readonly overload: OverloadMonitor,
  ) {}

  @Get('heartbeat')
  @Header('cache-control', 'no-store')
  heartbeat(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('health')
  @Header('cache-control', 'no-store')
  health(@Res({ passthrough: true }) res: ServerResponse) {
    const services = this.checker.snapshot();
    const allUp = Object.values(services).every((state) => state === 'up');
    // Draining or overloaded: load balancers must stop sending traffic here, so readiness
    // fails (liveness, /heartbeat, does not: a busy pod must not be killed).
    const { draining } = this.lifecycle;
    const { overloaded } = this.overload;
    if (draining || overloaded) res.statusCode = 503;
    return {
      status: draining ? 'draining' : overloaded ? 'overloaded' : allUp ? 'ok' : 'degraded',
      ...(overloaded ? { overloaded } : {}),
      uptime: this.uptime(),
      version: this.build.version,
      services,
      instances: this.checker.instances(),
    };
  }

  @Get('info')
  info() {
    return {
      name: this.build.name,
      version: this.build.version,
      node: process.version,
      uptime: this.uptime(),
      // SECURITY: prefixes and service names only; upstream URLs never leave the gateway.
      routes: this.registry.current.routes.map(({ prefix, service }) => ({ prefix, service })),
    };
  }

  @Get('health/:service')
  serviceHealth(
    @Param('service') service: string,
    @Req() req: IncomingMessage,
    @Res() res: ServerResponse,
  ): void {
    if (!this.pipeline.forwardHealthCheck(service, req, res, this.config.HEALTH_CHECK_TIMEOUT_MS)) {
      throw new NotFoundException();
    }
  }

  private uptime(): number {
    return Math.round((Date.now() - this.startedAt) / 1000);
  }
}
