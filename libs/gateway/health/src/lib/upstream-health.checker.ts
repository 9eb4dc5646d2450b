import { request } from 'node:http';
import { request as requestTls } from 'node:https';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '@helix/gateway-config';
import { GatewayMetrics } from '@helix/gateway-observability';
import { UpstreamRegistry } from '@helix/gateway-router';
import type { UpstreamInstance } from '@helix/gateway-upstream';

export type ServiceState = 'up' | 'down' | 'unknown';

/** One instance as `/health` shows it: no URL, which must not leave the gateway. */
export interface InstanceSnapshot {
  readonly instance: number;
  readonly health: UpstreamInstance['health'];
  readonly ejected: boolean;
  readonly inFlight: number;
}

/** Checks are spread by up to this share of the interval, so instances are not hit in step. */
const JITTER = 0.1;

function healthUrl(instance: UpstreamInstance): URL {
  const url = new URL(instance.url);
  url.pathname = `${url.pathname.replace(/\/$/, '')}/health`;
  return url;
}

/**
 * Polls every instance's `GET /health` in the background, with healthy and unhealthy
 * thresholds and jitter (as Envoy's health checker does). `/health` reads the last results; a
 * client never waits on a check.
 */
@Injectable()
export class UpstreamHealthChecker implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(UpstreamHealthChecker.name);
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly registry: UpstreamRegistry,
    private readonly metrics: GatewayMetrics,
  ) {}

  onApplicationBootstrap(): void {
    void this.round();
  }

  onModuleDestroy(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Each service's state, in route-table order: up while any instance is. */
  snapshot(): Record<string, ServiceState> {
    return Object.fromEntries(this.registry.all().map((s) => [s.name, s.state()]));
  }

  /** Each instance's state, by service. */
  instances(): Record<string, InstanceSnapshot[]> {
    const now = Date.now();
    return Object.fromEntries(
      this.registry.all().map((service) => [
        service.name,
        service.instances.map((i) => ({
          instance: i.index,
          health: i.health,
          ejected: i.ejectedUntil > now,
          inFlight: i.inFlight,
        })),
      ]),
    );
  }

  private async round(): Promise<void> {
    await this.checkAll();
    if (this.stopped) return;
    const interval = this.config.HEALTH_CHECK_INTERVAL_MS;
    this.timer = setTimeout(
      () => void this.round(),
      interval * (1 - JITTER + Math.random() * 2 * JITTER),
    );
    this.timer.unref();
  }

  private async checkAll(): Promise<void> {
    const { HEALTH_CHECK_HEALTHY_THRESHOLD: healthy, HEALTH_CHECK_UNHEALTHY_THRESHOLD: unhealthy } =
      this.config;
    await Promise.all(
      this.registry.all().flatMap((service) =>
        service.instances.map(async (instance) => {
          const ok = await this.probe(instance);
          const before = service.state();
          if (instance.recordCheck(ok, healthy, unhealthy)) {
            this.logger.log(`instance ${instance.index} of ${service.name} is ${instance.health}`);
          }
          const after = service.state();
          if (after !== before)
            this.logger.log(`service ${service.name} is ${after} (was ${before})`);
          this.metrics.upstreamUp.labels(service.name).set(after === 'up' ? 1 : 0);
          this.metrics.upstreamInstanceUp
            .labels(service.name, String(instance.index))
            .set(instance.isAvailable(Date.now()) ? 1 : 0);
        }),
      ),
    );
  }

  private probe(instance: UpstreamInstance): Promise<boolean> {
    const url = healthUrl(instance);
    const send = url.protocol === 'https:' ? requestTls : request;
    return new Promise((resolve) => {
      const req = send(url, {
        agent: instance.agent,
        timeout: this.config.HEALTH_CHECK_TIMEOUT_MS,
        headers: { 'user-agent': 'helix-gateway-health-checker' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300);
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
      req.end();
    });
  }
}
