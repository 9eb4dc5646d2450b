import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { constants as zlib } from 'node:zlib';
import {
  Inject,
  Injectable,
  Logger,
  type OnModuleDestroy,
  type OnModuleInit,
} from '@nestjs/common';
import compression from 'compression';
import type Redis from 'ioredis';
import { GATEWAY_CONFIG, type GatewayConfig, type GatewayRoute } from '@helix/gateway-config';
import { GatewayMetrics, recordOf, RequestObserver } from '@helix/gateway-observability';
import { createClientIpResolver } from './client-ip';
import { CorsPolicy } from './cors.policy';
import { sendError } from './error-response';
import { GcraRedisStorage } from './gcra-redis.storage';
import { RateLimiter } from './rate-limiter';
import { computeSecurityHeaders } from './security-headers';

type Middleware = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;

const noop = (): void => undefined;
const REDIS_CONNECT_WAIT_MS = 1000;
// mime-db counts application/octet-stream as compressible, but it is what archives, images and
// other already-compressed binaries travel as: compressing it costs CPU for nothing.
const NEVER_COMPRESSED = /^(?:text\/event-stream|application\/octet-stream)/i;

/** Response headers the gateway owns: an upstream's copies are dropped so clients see one. */
function isGatewayOwned(name: string): boolean {
  return (
    name.startsWith('access-control-') || name.startsWith('ratelimit-') || name === 'x-powered-by'
  );
}

/**
 * The edge policies, built once from the configuration: security headers (Helmet), CORS,
 * rate limiting and compression. The gateway's pipeline runs them ahead of every proxy and of
 * Nest's own endpoints.
 */
@Injectable()
export class EdgePolicies implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(EdgePolicies.name);
  private readonly securityHeaders: ReadonlyArray<readonly [string, string]>;
  private readonly cors: CorsPolicy;
  private readonly compress: Middleware | undefined;
  private readonly compressionThreshold: number;
  private readonly clientIp: (req: IncomingMessage) => string;
  private readonly limiter: RateLimiter | undefined;
  private routeLimiters = new Map<string, RateLimiter>();
  private readonly storage: GcraRedisStorage | undefined;
  private readonly onStorageState: (available: boolean, error?: unknown) => void;
  private readonly redis: Redis | undefined;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    @Inject(GATEWAY_CONFIG) config: GatewayConfig,
    observer: RequestObserver,
    private readonly metrics: GatewayMetrics,
  ) {
    this.securityHeaders = computeSecurityHeaders(config.HSTS_MAX_AGE_S);
    this.cors = new CorsPolicy({
      origin: config.CORS_ORIGIN,
      methods: config.CORS_ALLOWED_METHODS,
      allowedHeaders: config.CORS_ALLOWED_HEADERS,
      exposedHeaders: config.CORS_EXPOSED_HEADERS,
      credentials: config.CORS_CREDENTIALS,
      maxAgeSeconds: config.CORS_MAX_AGE_S,
    });
    this.compressionThreshold = config.COMPRESSION_THRESHOLD_BYTES;
    this.compress = config.COMPRESSION
      ? (compression({
          threshold: config.COMPRESSION_THRESHOLD_BYTES,
          // Events must reach the client as written, and zlib would hold them back (nest#5762).
          filter: (req, res) =>
            !NEVER_COMPRESSED.test(String(res.getHeader('content-type') ?? '')) &&
            compression.filter(req, res),
          // Quality 4 of 11: near gzip's speed for dynamic responses, still smaller.
          brotli: { params: { [zlib.BROTLI_PARAM_QUALITY]: 4 } },
        }) as Middleware)
      : undefined;
    this.clientIp = createClientIpResolver(config.TRUST_PROXY);
    observer.useClientIpResolver(this.clientIp);

    if (config.REDIS_URL || config.REDIS_SENTINELS) {
      // Required here, not imported: ioredis and its dependencies are about 20 MiB of RSS that a
      // gateway counting its limits locally should not carry (esbuild keeps the module lazy).
      const { connectRedis } = require('./redis-connection') as typeof import('./redis-connection');
      this.redis = connectRedis(config);
      // Connection errors surface through the limiter's state changes; ioredis reconnects itself.
      this.redis.on('error', noop);
      this.storage = new GcraRedisStorage(this.redis);
    }
    this.onStorageState = (available: boolean, error?: unknown) => {
      metrics.redisUp.set(available ? 1 : 0);
      if (available) this.logger.log('Redis is back: rate limits are shared again');
      else
        this.logger.warn(
          `Redis is unavailable, counting rate limits locally: ${(error as Error)?.message}`,
        );
    };
    if (config.RATE_LIMIT_MAX > 0) {
      this.limiter = new RateLimiter(
        config.RATE_LIMIT_MAX,
        config.RATE_LIMIT_WINDOW_MS,
        this.storage,
        this.onStorageState,
      );
    }
    this.useRoutes(config.routes);
    this.sweeper = setInterval(() => {
      this.limiter?.sweep();
      for (const limiter of this.routeLimiters.values()) limiter.sweep();
    }, 10_000);
    this.sweeper.unref();
  }

  /**
   * The per-route limits of a route table (at boot, and on a hot reload). A route whose limit
   * did not change keeps its counters.
   */
  useRoutes(routes: readonly GatewayRoute[]): void {
    const next = new Map<string, RateLimiter>();
    for (const route of routes) {
      const wanted = route.rateLimit;
      if (!wanted || wanted.max === 0) continue;
      const current = this.routeLimiters.get(route.prefix);
      const same = current && current.limit === wanted.max && current.windowMs === wanted.windowMs;
      next.set(
        route.prefix,
        same
          ? current
          : new RateLimiter(
              wanted.max,
              wanted.windowMs,
              this.storage,
              this.onStorageState,
              route.prefix,
            ),
      );
    }
    this.routeLimiters = next;
  }

  /**
   * Gives Redis a moment to connect before traffic arrives, so the first hits are shared; a
   * Redis that is down does not hold start-up for longer than that (counting is local then).
   */
  async onModuleInit(): Promise<void> {
    const redis = this.redis;
    if (!redis || redis.status === 'ready') return;
    const ready = await new Promise<boolean>((resolve) => {
      const settle = (connected: boolean) => {
        clearTimeout(timer);
        redis.off('ready', onReady);
        redis.off('error', onError);
        resolve(connected);
      };
      const onReady = () => settle(true);
      const onError = () => settle(false);
      const timer = setTimeout(onError, REDIS_CONNECT_WAIT_MS);
      redis.once('ready', onReady);
      redis.once('error', onError);
    });
    this.metrics.redisUp.set(ready ? 1 : 0);
    if (!ready) this.logger.warn('Redis is unavailable at start-up, counting rate limits locally');
  }

  /**
   * Before routing: security headers and CORS. Returns true when the request has been
   * answered (a CORS preflight).
   */
  greet(req: IncomingMessage, res: ServerResponse): boolean {
    const headers = this.securityHeaders;
    for (let i = 0; i < headers.length; i++) res.setHeader(headers[i][0], headers[i][1]);
    return this.cors.handle(req, res);
  }

  /**
   * After routing: the rate limit of the route (or the global one for the gateway's own
   * endpoints), then compression. Returns true when the request has been answered (429).
   */
  admit(req: IncomingMessage, res: ServerResponse, route: GatewayRoute | undefined): boolean {
    const limiter = (route && this.routeLimiters.get(route.prefix)) ?? this.limiter;
    if (limiter) {
      const clientIp = this.clientIp(req);
      const record = recordOf(res);
      if (record) record.clientIp = clientIp;
      const decision = limiter.hit(clientIp);
      res.setHeader('ratelimit-limit', decision.limit);
      res.setHeader('ratelimit-remaining', decision.remaining);
      res.setHeader('ratelimit-reset', decision.resetSeconds);
      if (!decision.allowed) {
        res.setHeader('retry-after', decision.retryAfterSeconds);
        sendError(
          res,
          429,
          `Rate limit exceeded: retry in ${decision.retryAfterSeconds} s`,
          String(res.getHeader('x-request-id')),
        );
        return true;
      }
    }
    // A proxied response is considered for compression when its head arrives (onUpstreamHeaders).
    if (route === undefined && this.compress && req.headers['accept-encoding'] !== undefined) {
      this.compress(req, res, noop);
    }
    return false;
  }

  /** On an upstream's response headers: the gateway's own CORS, rate-limit and Vary win. */
  onUpstreamHeaders(headers: IncomingHttpHeaders, res: ServerResponse): void {
    for (const name in headers) {
      if (isGatewayOwned(name)) delete headers[name];
    }
    const vary = res.getHeader('vary');
    if (vary !== undefined && headers.vary !== undefined)
      headers.vary = `${headers.vary}, ${String(vary)}`;
    this.compressUpstream(headers, res);
  }

  /**
   * Puts compression on a proxied response only when its head allows it: a body the upstream
   * encoded, or one known to be under the threshold, never meets the compression middleware.
   * Installing it on every response cost more than the proxying itself: its per-response
   * closures outlived young-generation collections, and scavenges grew from under 1 ms to
   * 15–20 ms, a p99 of tens of milliseconds at 1,000 req/s (measured; see the README).
   */
  private compressUpstream(headers: IncomingHttpHeaders, res: ServerResponse): void {
    if (!this.compress || res.req.headers['accept-encoding'] === undefined) return;
    if (headers['content-encoding'] !== undefined) return;
    const length = headers['content-length'];
    if (length !== undefined && Number(length) < this.compressionThreshold) return;
    this.compress(res.req, res, noop);
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.sweeper);
    await this.redis?.quit().catch(noop);
  }
}
