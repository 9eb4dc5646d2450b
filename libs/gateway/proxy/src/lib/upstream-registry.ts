import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '@helix/gateway-config';
import { createProxyMiddleware, type RequestHandler } from 'http-proxy-middleware';
import { exchangePlugin } from './exchange';

/** One instance of a service: its URL, its own keep-alive pool, and its streaming proxy. */
export interface Upstream {
  readonly url: URL;
  /** `host[:port]`, the Host header the instance receives. */
  readonly host: string;
  readonly agent: HttpAgent;
  readonly proxy: RequestHandler;
}

/** A service and its instances, shared by every route that names it. */
export interface UpstreamService {
  readonly name: string;
  readonly upstreams: readonly Upstream[];
  /** The next instance, round-robin. */
  pick(): Upstream;
}

function createUpstream(url: URL, idleTimeoutMs: number): Upstream {
  const options = {
    keepAlive: true,
    maxFreeSockets: 256,
    scheduling: 'lifo' as const,
    // A pooled socket is dropped before the upstream would close it (node#52649); Node also
    // honours an upstream's `Keep-Alive: timeout=` hint, minus a second.
    timeout: idleTimeoutMs,
  };
  const agent = url.protocol === 'https:' ? new HttpsAgent(options) : new HttpAgent(options);
  const proxy = createProxyMiddleware({
    // A URL object, not a string: httpxy would parse a string again on every request.
    target: url,
    agent,
    ejectPlugins: true,
    plugins: [exchangePlugin],
  });
  return { url, host: url.host, agent, proxy };
}

function createService(name: string, urls: readonly URL[], idleTimeoutMs: number): UpstreamService {
  const upstreams = urls.map((url) => createUpstream(url, idleTimeoutMs));
  let next = 0;
  return {
    name,
    upstreams,
    pick: () => {
      const upstream = upstreams[next];
      next = (next + 1) % upstreams.length;
      return upstream;
    },
  };
}

/**
 * The upstream services of the route table, built once at boot: one proxy and one keep-alive
 * pool per instance, never per request (http-proxy-middleware#954).
 */
@Injectable()
export class UpstreamRegistry implements OnModuleDestroy {
  private readonly services = new Map<string, UpstreamService>();

  constructor(@Inject(GATEWAY_CONFIG) config: GatewayConfig) {
    for (const route of config.routes) {
      if (!this.services.has(route.service)) {
        this.services.set(
          route.service,
          createService(route.service, route.targets, config.UPSTREAM_IDLE_TIMEOUT_MS),
        );
      }
    }
  }

  get(name: string): UpstreamService | undefined {
    return this.services.get(name);
  }

  all(): UpstreamService[] {
    return [...this.services.values()];
  }

  onModuleDestroy(): void {
    for (const service of this.services.values()) {
      for (const upstream of service.upstreams) upstream.agent.destroy();
    }
  }
}
