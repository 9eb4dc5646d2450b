import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Inject, Injectable } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig, type GatewayRoute } from '@helix/gateway-config';
import {
  assignRequestId,
  EdgePolicies,
  resolveRequestId,
  sendError,
  writeSocketError,
} from '@helix/gateway-edge';
import { performance } from 'node:perf_hooks';
import { recordOf, RequestObserver } from '@helix/gateway-observability';
import { type ExchangeHooks, openExchange, rejectOversizedBody } from './exchange';
import { GatewayLifecycle } from './gateway-lifecycle';
import { applyRequestHeaderPolicy } from './header-policy';
import { isRejectedTarget, normalizeRequestTarget } from './request-target';
import { createRouteMatcher } from './route-matcher';
import { UpstreamRegistry, type UpstreamService } from './upstream-registry';

interface CompiledRoute extends GatewayRoute {
  readonly upstream: UpstreamService;
}

const BAD_PATH = 'The request path is malformed or ambiguous';
const NO_ROUTE = 'No route matches this path';
const NO_WEBSOCKET = 'This path does not accept WebSocket upgrades';
const HEARTBEAT = '/heartbeat';
const TOO_MANY_HEADERS = 'The request has too many header fields';
const NO_HOST = 'An HTTP/1.1 request needs a Host header';

/**
 * The request path, written down once. For every request, in this order:
 * request id → security headers and CORS (preflights end here) → normalise the target →
 * match a route → rate limit and compression → header policy → upstream → response or error.
 * A request that matches no route goes on to Nest, which answers the gateway's own endpoints
 * and the 404, after the same edge policies (`/heartbeat` is never rate limited).
 */
@Injectable()
export class GatewayPipeline {
  private readonly match: (path: string) => CompiledRoute | undefined;
  private readonly hooks: ExchangeHooks;
  private readonly maxRawHeaders: number;
  /** Upgraded connections, which the HTTP server no longer tracks: cut if a drain times out. */
  private readonly tunnels = new Set<Socket>();

  constructor(
    @Inject(GATEWAY_CONFIG) config: GatewayConfig,
    private readonly registry: UpstreamRegistry,
    private readonly edge: EdgePolicies,
    private readonly observer: RequestObserver,
    private readonly lifecycle: GatewayLifecycle,
  ) {
    this.hooks = {
      onUpstreamHeaders: edge.onUpstreamHeaders.bind(edge),
      serverTiming: config.SERVER_TIMING,
    };
    this.maxRawHeaders = config.MAX_HEADERS_COUNT * 2;
    const routes = config.routes.map((route) => {
      const upstream = registry.get(route.service);
      if (!upstream) throw new Error(`no upstream service for route ${route.prefix}`);
      return { ...route, upstream };
    });
    this.match = createRouteMatcher(routes);
  }

  /** The server's request listener: proxied routes first, everything else to `fallback`. */
  createRequestListener(fallback: RequestListener): RequestListener {
    return (req, res) => {
      if (!this.handle(req, res)) fallback(req, res);
    };
  }

  /** Proxies or rejects the request and returns true, or returns false to let Nest answer. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const record = this.observer.begin(req, res, performance.now());
    const requestId = assignRequestId(req, res);
    // Draining: every answer asks its client to go elsewhere for the next request.
    if (this.lifecycle.draining) res.shouldKeepAlive = false;
    if (this.edge.greet(req, res)) return true;
    if (req.rawHeaders.length > this.maxRawHeaders) {
      sendError(res, 431, TOO_MANY_HEADERS, requestId);
      return true;
    }
    // RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host.
    if (req.headers.host === undefined && req.httpVersionMinor === 1) {
      res.setHeader('connection', 'close');
      sendError(res, 400, NO_HOST, requestId);
      return true;
    }
    const target = normalizeRequestTarget(req.url ?? '');
    if (isRejectedTarget(target)) {
      sendError(res, 400, BAD_PATH, requestId);
      return true;
    }
    req.url = target.url;
    const route = this.match(target.path);
    if (!route) return target.path !== HEARTBEAT && this.edge.admit(req, res, undefined);
    record.route = route.prefix;
    record.service = route.service;
    if (this.edge.admit(req, res, route)) return true;
    if (
      route.maxBodyBytes !== undefined &&
      rejectOversizedBody(req, res, requestId, route.maxBodyBytes)
    ) {
      return true;
    }

    const upstream = route.upstream.pick();
    applyRequestHeaderPolicy(
      req.headers,
      {
        clientIp: req.socket.remoteAddress,
        httpVersion: req.httpVersion,
        requestId,
        upstreamHost: upstream.host,
      },
      false,
    );
    if (route.stripPrefix) req.url = stripPrefix(target.url, route.prefix);
    openExchange(
      req,
      {
        requestId,
        service: route.service,
        timeoutMs: route.timeoutMs,
        mode: 'route',
        target: res,
        record,
        maxBodyBytes: route.maxBodyBytes,
      },
      this.hooks,
    );
    void upstream.proxy(req, res);
    return true;
  }

  /**
   * Proxies `GET /health/<service>` to the service's own `/health`. Returns false for a
   * service that the route table does not know.
   */
  forwardHealthCheck(
    service: string,
    req: IncomingMessage,
    res: ServerResponse,
    timeoutMs: number,
  ): boolean {
    const upstreams = this.registry.get(service);
    if (!upstreams) return false;
    const upstream = upstreams.pick();
    const requestId = resolveRequestId(req.headers['x-request-id']);
    applyRequestHeaderPolicy(
      req.headers,
      {
        clientIp: req.socket.remoteAddress,
        httpVersion: req.httpVersion,
        requestId,
        upstreamHost: upstream.host,
      },
      false,
    );
    req.url = '/health';
    openExchange(
      req,
      { requestId, service, timeoutMs, mode: 'health', target: res, record: recordOf(res) },
      this.hooks,
    );
    void upstream.proxy(req, res);
    return true;
  }

  /** The server's `upgrade` listener: WebSocket upgrades on routes that allow them. */
  handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const requestId = resolveRequestId(req.headers['x-request-id']);
    if (req.rawHeaders.length > this.maxRawHeaders) {
      writeSocketError(socket, 431, TOO_MANY_HEADERS, requestId);
      return;
    }
    const target = normalizeRequestTarget(req.url ?? '');
    if (isRejectedTarget(target)) {
      writeSocketError(socket, 400, BAD_PATH, requestId);
      return;
    }
    const route = this.match(target.path);
    if (!route) {
      writeSocketError(socket, 404, NO_ROUTE, requestId);
      return;
    }
    // SECURITY: only a WebSocket handshake is tunnelled; an h2c or other upgrade would hand the
    // client a raw connection to the upstream (h2c smuggling).
    if (
      !route.websocket ||
      req.headers.upgrade?.toLowerCase() !== 'websocket' ||
      req.method !== 'GET'
    ) {
      writeSocketError(socket, 400, NO_WEBSOCKET, requestId);
      return;
    }
    const upstream = route.upstream.pick();
    applyRequestHeaderPolicy(
      req.headers,
      {
        clientIp: req.socket.remoteAddress,
        httpVersion: req.httpVersion,
        requestId,
        upstreamHost: upstream.host,
      },
      true,
    );
    req.url = route.stripPrefix ? stripPrefix(target.url, route.prefix) : target.url;
    openExchange(
      req,
      {
        requestId,
        service: route.service,
        timeoutMs: route.timeoutMs,
        mode: 'route',
        target: socket,
        record: undefined,
      },
      this.hooks,
    );
    this.tunnels.add(socket);
    socket.once('close', () => this.tunnels.delete(socket));
    upstream.proxy.upgrade(req, socket, head);
  }

  /** Cuts every WebSocket tunnel still open (the end of a drain). */
  closeTunnels(): void {
    for (const socket of this.tunnels) socket.destroy();
  }
}

function stripPrefix(url: string, prefix: string): string {
  const rest = url.slice(prefix.length);
  return rest === '' || rest.charCodeAt(0) === 63 /* ? */ ? `/${rest}` : rest;
}
