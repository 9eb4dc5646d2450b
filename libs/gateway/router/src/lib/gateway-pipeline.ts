import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { performance } from 'node:perf_hooks';
import { Inject, Injectable } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '@helix/gateway-config';
import {
  assignRequestId,
  BODY_TOO_SLOW,
  BodyGuard,
  clientConnection,
  closeAfterResponse,
  EdgePolicies,
  hasBody,
  isHttp2,
  OverloadMonitor,
  rejectOversizedBody,
  resolveRequestId,
  sendError,
  writeSocketError,
} from '@helix/gateway-edge';
import {
  GatewayMetrics,
  GatewayTracer,
  recordOf,
  RequestObserver,
  type RequestRecord,
} from '@helix/gateway-observability';
import {
  type Exchange,
  type ExchangeEndpoint,
  type ExchangeHooks,
  forward,
  moveExchange,
  openExchange,
  refuseRequest,
  UPSTREAM_FAILURES,
  type UpstreamFailure,
} from '@helix/gateway-upstream';
import { GatewayLifecycle } from './gateway-lifecycle';
import { clientResponseHeaders, forwardedRequestHeaders } from './header-policy';
import { isRejectedTarget, normalizeRequestTarget } from './request-target';
import { UpstreamRegistry } from './upstream-registry';

const BAD_PATH = 'The request path is malformed or ambiguous';
const NO_ROUTE = 'No route matches this path';
const NO_WEBSOCKET = 'This path does not accept WebSocket upgrades';
const HEARTBEAT = '/heartbeat';
const TOO_MANY_HEADERS = 'The request has too many header fields';
/** As answerClientError says it over HTTP/1.1. */
const HEADERS_TOO_LARGE = 'The request headers are too large';
const NO_HOST = 'An HTTP/1.1 request needs a Host header';
const OVERLOADED = 'The gateway is overloaded; try again shortly';
/** Seconds a shed client is asked to wait: overload and a full cap pass in moments. */
const SHED_RETRY_AFTER_S = '1';

type ShedReason = 'capacity' | 'overload';

/** RFC 9110 §9.2.2 idempotent methods: safe to send twice when the first never arrived. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
/** A request is tried at most this often (the first try and one retry). */
const MAX_TRIES = 2;

/**
 * Connect failures, and a connection closed before any answer (however the engine names it),
 * as nginx's default `proxy_next_upstream error` retries.
 */
const RETRYABLE_FAILURES: ReadonlySet<UpstreamFailure> = new Set([
  'refused',
  'connect_timeout',
  'reset',
]);

/**
 * The request path, written down once. For every request, in this order:
 * request id → security headers and CORS (preflights end here) → normalise the target →
 * match a route → overload shedding → rate limit and compression → body limit → the service's
 * concurrency cap → pick an instance → header policy → body guard → upstream → response, retry
 * or error. With tracing on, a SERVER span opens once the route matches and a CLIENT span with
 * each try (the try's `traceparent`); both end when the response does. A request that matches
 * no route goes on to Nest, which answers the gateway's own endpoints and the 404, after the
 * same edge policies (`/heartbeat` is never rate limited), untraced.
 */
@Injectable()
export class GatewayPipeline {
  private readonly hooks: ExchangeHooks;
  private readonly maxRawHeaders: number;
  private readonly maxHeaderBytes: number;
  /** Upgraded connections, which the HTTP server no longer tracks: cut if a drain times out. */
  private readonly tunnels = new Set<Socket>();

  constructor(
    @Inject(GATEWAY_CONFIG) config: GatewayConfig,
    private readonly registry: UpstreamRegistry,
    private readonly edge: EdgePolicies,
    private readonly observer: RequestObserver,
    private readonly lifecycle: GatewayLifecycle,
    private readonly bodyGuard: BodyGuard,
    private readonly overload: OverloadMonitor,
    private readonly metrics: GatewayMetrics,
    private readonly tracer: GatewayTracer,
  ) {
    metrics.observeUpstreamInFlight(() => registry.all());
    this.hooks = {
      onUpstreamHeaders: (headers, res, requestId) => {
        const answer = clientResponseHeaders(headers, clientConnection(res), requestId);
        edge.onUpstreamHeaders(answer, res);
        return answer;
      },
      serverTiming: config.SERVER_TIMING,
      retry: this.retry.bind(this),
    };
    this.maxRawHeaders = config.MAX_HEADERS_COUNT * 2;
    this.maxHeaderBytes = config.MAX_HEADER_BYTES;
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
    const http2 = isHttp2(req);
    // Draining: every answer asks its client to go elsewhere for the next request.
    if (this.lifecycle.draining) closeAfterResponse(req, res);
    if (this.edge.greet(req, res)) return true;
    if (http2) {
      if (this.refuseHttp2Headers(req, res, requestId)) return true;
    } else if (req.rawHeaders.length > this.maxRawHeaders) {
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
    const route = this.registry.current.match(target.path);
    if (!route) return target.path !== HEARTBEAT && this.edge.admit(req, res, undefined);
    record.route = route.prefix;
    record.service = route.service;
    if (this.tracer.enabled) {
      const encrypted = (req.socket as TLSSocket).encrypted === true;
      this.tracer.startServerSpan(req, record, route.prefix, target.path, requestId, encrypted);
    }
    if (this.overload.overloaded) {
      this.shed(res, requestId, route.prefix, 'overload', OVERLOADED);
      return true;
    }
    if (this.edge.admit(req, res, route)) return true;
    if (
      route.maxBodyBytes !== undefined &&
      rejectOversizedBody(req, res, requestId, route.maxBodyBytes)
    ) {
      return true;
    }

    const now = Date.now();
    const upstream = route.upstream;
    if (upstream.atCapacity()) {
      this.shed(res, requestId, route.prefix, 'capacity', atCapacity(route.service));
      return true;
    }
    const instance = upstream.pick(now);
    if (!instance) {
      this.answerUnavailable(res, requestId, record);
      return true;
    }
    upstream.budget.recordRequest(now);
    const body = hasBody(req);
    // An HTTP/2 body of unknown length goes to the upstream chunked, like HTTP/1.1's.
    if (body && http2 && req.headers['content-length'] === undefined) {
      req.headers['transfer-encoding'] = 'chunked';
    }
    this.forwardHeaders(req, requestId, instance, false);
    if (route.stripPrefix) req.url = stripPrefix(target.url, route.prefix);
    const exchange = openExchange(
      {
        req,
        requestId,
        service: route.service,
        upstream,
        instance,
        // Idempotent, and with no body that could be half gone: safe to send again.
        retryable: route.retry && !body && IDEMPOTENT.has(req.method ?? ''),
        timeoutMs: route.timeoutMs,
        connectTimeoutMs: route.connectTimeoutMs,
        idleTimeoutMs: route.idleTimeoutMs,
        mode: 'route',
        target: res,
        record,
        maxBodyBytes: route.maxBodyBytes,
      },
      this.hooks,
    );
    if (body) {
      this.bodyGuard.watch(req, res, () => refuseRequest(exchange, 408, BODY_TOO_SLOW));
    }
    if (record.span) this.tracer.startTry(record, req, instance, 1);
    forward(exchange);
    return true;
  }

  /**
   * Proxies `GET /health/<service>` to the `/health` of an available instance: with none, the
   * service as a whole is down. Returns false for a service the route table does not know.
   */
  forwardHealthCheck(
    service: string,
    req: IncomingMessage,
    res: ServerResponse,
    timeoutMs: number,
  ): boolean {
    const upstream = this.registry.get(service);
    if (!upstream) return false;
    const requestId = resolveRequestId(req.headers['x-request-id']);
    const instance = upstream.pick(Date.now());
    if (!instance) {
      sendError(res, 503, `The ${service} service is unreachable`, requestId, {
        status: 'down',
        service,
      });
      return true;
    }
    this.forwardHeaders(req, requestId, instance, false);
    req.url = '/health';
    const exchange = openExchange(
      {
        req,
        requestId,
        service,
        upstream,
        instance,
        retryable: false,
        timeoutMs,
        connectTimeoutMs: timeoutMs,
        idleTimeoutMs: 0,
        mode: 'health',
        target: res,
        record: recordOf(res),
      },
      this.hooks,
    );
    forward(exchange);
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
    const route = this.registry.current.match(target.path);
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
    const shed: ShedReason | undefined = this.overload.overloaded
      ? 'overload'
      : route.upstream.atCapacity()
        ? 'capacity'
        : undefined;
    if (shed) {
      this.metrics.shed.labels(route.prefix, shed).inc();
      const message = shed === 'overload' ? OVERLOADED : atCapacity(route.service);
      writeSocketError(socket, 503, message, requestId, { 'retry-after': SHED_RETRY_AFTER_S });
      return;
    }
    const instance = route.upstream.pick(Date.now());
    if (!instance) {
      const { status, message } = UPSTREAM_FAILURES.unavailable;
      writeSocketError(socket, status, message, requestId);
      return;
    }
    this.forwardHeaders(req, requestId, instance, true);
    req.url = route.stripPrefix ? stripPrefix(target.url, route.prefix) : target.url;
    openExchange(
      {
        req,
        requestId,
        service: route.service,
        upstream: route.upstream,
        instance,
        retryable: false,
        timeoutMs: route.timeoutMs,
        connectTimeoutMs: route.connectTimeoutMs,
        idleTimeoutMs: 0,
        mode: 'route',
        target: socket,
        record: undefined,
      },
      this.hooks,
    );
    this.tunnels.add(socket);
    socket.once('close', () => this.tunnels.delete(socket));
    instance.proxy.upgrade(req, socket, head);
  }

  /** Cuts every WebSocket tunnel still open (the end of a drain). */
  closeTunnels(): void {
    for (const socket of this.tunnels) socket.destroy();
  }

  private forwardHeaders(
    req: IncomingMessage,
    requestId: string,
    instance: ExchangeEndpoint,
    upgrade: boolean,
  ): void {
    const headers = forwardedRequestHeaders(
      req.headers,
      {
        clientIp: req.socket.remoteAddress,
        httpVersion: req.httpVersion,
        encrypted: (req.socket as TLSSocket).encrypted === true,
        requestId,
        upstreamHost: instance.host,
      },
      upgrade,
    );
    // The engines, the tracer and a retry read and write the request's own header object (over
    // HTTP/2 too: GatewayHttp2Request has a setter for it).
    req.headers = headers;
  }

  /**
   * The header limits over HTTP/2, where no HTTP/1.1 parser enforces them: too many fields or
   * too many bytes (HPACK's accounting, RFC 9113 §6.5.2: name, value and 32 per field, the
   * pseudo-headers included) get the same 431 as over HTTP/1.1. nghttp2 resets a stream far
   * beyond them before it is a request at all (GatewayHttpAdapter).
   */
  private refuseHttp2Headers(
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
  ): boolean {
    const raw = req.rawHeaders;
    let fields = 0;
    let bytes = 0;
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i].charCodeAt(0) !== 0x3a) fields++;
      bytes += raw[i].length + raw[i + 1].length + 32;
    }
    if (fields * 2 > this.maxRawHeaders) {
      sendError(res, 431, TOO_MANY_HEADERS, requestId);
      return true;
    }
    if (bytes > this.maxHeaderBytes) {
      sendError(res, 431, HEADERS_TOO_LARGE, requestId);
      return true;
    }
    return false;
  }

  /** Refuses a request before any upstream work, counted by reason (Envoy's overflow). */
  private shed(
    res: ServerResponse,
    requestId: string,
    route: string,
    reason: ShedReason,
    message: string,
  ): void {
    this.metrics.shed.labels(route, reason).inc();
    res.setHeader('retry-after', SHED_RETRY_AFTER_S);
    sendError(res, 503, message, requestId);
  }

  private answerUnavailable(res: ServerResponse, requestId: string, record: RequestRecord): void {
    record.upstreamFailure = 'unavailable';
    const { status, message } = UPSTREAM_FAILURES.unavailable;
    sendError(res, status, message, requestId);
  }

  /**
   * A retry, when it is safe: a connect failure (or a connection closed before any answer) of
   * a request with no body and an idempotent method, at most once, on another
   * instance, and within the service's retry budget.
   */
  private retry(exchange: Exchange, failure: UpstreamFailure): boolean {
    if (!exchange.retryable || exchange.tries >= MAX_TRIES || !RETRYABLE_FAILURES.has(failure)) {
      return false;
    }
    const now = Date.now();
    const next = exchange.upstream.pick(now, exchange.instance);
    if (!next) return false;
    if (!exchange.upstream.budget.tryRetry(now)) {
      next.release();
      return false;
    }
    moveExchange(exchange, next);
    exchange.req.headers.host = next.host;
    const record = exchange.record;
    if (record) record.retries++;
    if (record?.span) this.tracer.startTry(record, exchange.req, next, exchange.tries);
    forward(exchange);
    return true;
  }
}

function atCapacity(service: string): string {
  return `The ${service} service is at capacity; try again shortly`;
}

function stripPrefix(url: string, prefix: string): string {
  const rest = url.slice(prefix.length);
  return rest === '' || rest.charCodeAt(0) === 63 /* ? */ ? `/${rest}` : rest;
}
