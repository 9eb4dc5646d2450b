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
import { type Upstream, UpstreamRegistry } from '@helix/gateway-proxy';

export type ServiceState = 'up' | 'down' | 'unknown';

function healthUrl(upstream: Upstream): URL {
  const url = new URL(upstream.url);
  url.pathname = `${url.pathname.replace(/\/$/, '')}/health`;
  return url;
}

/**
 * Polls every instance's `GET /health` in the background. `/health` reads the last results;
 * a client never waits on a check.
 */
@Injectable()
export class UpstreamHealthChecker implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(UpstreamHealthChecker.name);
  private readonly states = new Map<string, ServiceState>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly registry: UpstreamRegistry,
    private readonly metrics: GatewayMetrics,
  ) {
    for (const service of registry.all()) this.states.set(service.name, 'unknown');
  }

  onApplicationBootstrap(): void {
    void this.checkAll();
    this.timer = setInterval(() => void this.checkAll(), this.config.HEALTH_CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  /** Each service's last known state, in route-table order. */
  snapshot(): Record<string, ServiceState> {
    return Object.fromEntries(this.states);
  }

  private async checkAll(): Promise<void> {
    await Promise.all(
      this.registry.all().map(async (service) => {
        const results = await Promise.all(service.upstreams.map((u) => this.probe(u)));
        const state: ServiceState = results.some(Boolean) ? 'up' : 'down';
        this.metrics.upstreamUp.labels(service.name).set(state === 'up' ? 1 : 0);
        const previous = this.states.get(service.name);
        if (previous !== state) {
          this.logger.log(`service ${service.name} is ${state} (was ${previous})`);
          this.states.set(service.name, state);
        }
      }),
    );
  }

  private probe(upstream: Upstream): Promise<boolean> {
    const url = healthUrl(upstream);
    const send = url.protocol === 'https:' ? requestTls : request;
    return new Promise((resolve) => {
      const req = send(url, {
        agent: upstream.agent,
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
