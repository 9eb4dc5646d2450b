import {
  type ClientRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  ServerResponse,
} from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { Logger } from '@nestjs/common';
import type { Plugin } from 'http-proxy-middleware';
import { sendError, writeSocketError } from '@helix/gateway-edge';
import type { RequestRecord } from '@helix/gateway-observability';
import { applyResponseHeaderPolicy } from './header-policy';
import { classifyUpstreamError, UPSTREAM_FAILURES, type UpstreamFailure } from './upstream-errors';
import type { UpstreamInstance } from './upstream-instance';
import type { UpstreamService } from './upstream-service';

/**
 * How a failed exchange is answered: `route` with the error table (502/504), `health` with
 * the contract's `503 { "status": "down" }` of `/health/<service>`.
 */
export type FailureMode = 'route' | 'health';

/** What the pipeline decides once, at boot, for every exchange. */
export interface ExchangeHooks {
  /** A policy's last word on an upstream's response headers, before they are copied. */
  readonly onUpstreamHeaders: (headers: IncomingHttpHeaders, res: ServerResponse) => void;
  /** Add `Server-Timing: gw, upstream, total` to proxied responses. */
  readonly serverTiming: boolean;
  /** Tries the request on another instance after a failure; true when it did. */
  readonly retry: (exchange: Exchange, err: NodeJS.ErrnoException) => boolean;
}

/** What the pipeline knows of a request when it hands it to an upstream. */
export interface ExchangeInit {
  readonly req: IncomingMessage;
  readonly requestId: string;
  readonly service: string;
  readonly upstream: UpstreamService;
  /** The instance serving the current try. */
  instance: UpstreamInstance;
  /** Idempotent, with no body, on a route that allows retries. */
  readonly retryable: boolean;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  /** An idle limit on the response body (0: none); server-sent events are exempt. */
  readonly idleTimeoutMs: number;
  readonly mode: FailureMode;
  /** Where a failure is answered: the response, or the raw socket of an upgrade. */
  readonly target: ServerResponse | Duplex;
  readonly record: RequestRecord | undefined;
  /** The route's body limit, enforced while a body of unknown length streams. */
  readonly maxBodyBytes?: number;
}

/** The gateway's state of one proxied request, from routing to the upstream's first byte. */
export interface Exchange extends ExchangeInit {
  readonly hooks: ExchangeHooks;
  timer: NodeJS.Timeout | undefined;
  connectTimer: NodeJS.Timeout | undefined;
  /** Tries so far (1 for the first). */
  tries: number;
  released: boolean;
  proxyReq: ClientRequest | undefined;
  /** The gateway has answered itself (timeout, body too large): upstream events are moot. */
  answered: boolean;
  /** The upstream's response head arrived: from here on, http-proxy's stream handles failures. */
  responded: boolean;
  upgraded: boolean;
}

const EXCHANGE = Symbol('helix.exchange');
type Tagged = IncomingMessage & { [EXCHANGE]?: Exchange };

const logger = new Logger('UpstreamExchange');
const BODY_TOO_LARGE = 'The request body is larger than this route accepts';

/**
 * Opens the exchange of a request that is about to be proxied, with its time-to-first-byte
 * limit. The timer covers connecting, sending and waiting, and stops at the response's head,
 * so a long download or event stream is never cut by it.
 */
export function openExchange(init: ExchangeInit, hooks: ExchangeHooks): Exchange {
  const exchange: Exchange = {
    ...init,
    hooks,
    timer: undefined,
    connectTimer: undefined,
    tries: 1,
    released: false,
    proxyReq: undefined,
    answered: false,
    responded: false,
    upgraded: false,
  };
  exchange.timer = setTimeout(onUpstreamTimeout, init.timeoutMs, exchange);
  (init.req as Tagged)[EXCHANGE] = exchange;
  init.target.once('close', () => release(exchange));
  return exchange;
}

/** The instance the exchange holds is free again (its in-flight count drops). */
function release(exchange: Exchange): void {
  if (exchange.released) return;
  exchange.released = true;
  exchange.instance.release();
}

/** Moves the exchange to another instance for a retry; the caller has picked it. */
export function moveExchange(exchange: Exchange, next: UpstreamInstance): void {
  clearConnectTimer(exchange);
  exchange.instance.release();
  exchange.instance = next;
  exchange.tries++;
  exchange.proxyReq = undefined;
}

function clearConnectTimer(exchange: Exchange): void {
  if (exchange.connectTimer !== undefined) {
    clearTimeout(exchange.connectTimer);
    exchange.connectTimer = undefined;
  }
}

function onConnectTimeout(exchange: Exchange): void {
  exchange.connectTimer = undefined;
  exchange.proxyReq?.destroy(
    Object.assign(new Error('upstream connect timeout'), { code: 'ECONNECTTIMEOUT' }),
  );
}

function reportOutcome(exchange: Exchange, ok: boolean): void {
  const instance = exchange.instance;
  if (ok) {
    if (instance.reportSuccess()) {
      logger.log(`instance ${instance.index} of ${exchange.service} is back in service`);
    }
  } else if (instance.reportFailure(Date.now())) {
    logger.warn(
      `instance ${instance.index} of ${exchange.service} ejected until ${new Date(instance.ejectedUntil).toISOString()}`,
    );
  }
}

/** Answers 413 when the request is already too large to forward, before anything is sent. */
export function rejectOversizedBody(
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
  maxBodyBytes: number,
): boolean {
  const length = req.headers['content-length'];
  if (length === undefined || Number(length) <= maxBodyBytes) return false;
  res.setHeader('connection', 'close');
  sendError(res, 413, BODY_TOO_LARGE, requestId);
  return true;
}

function exchangeOf(req: IncomingMessage): Exchange | undefined {
  return (req as Tagged)[EXCHANGE];
}

function settle(exchange: Exchange | undefined): void {
  if (exchange === undefined) return;
  clearConnectTimer(exchange);
  if (exchange.timer !== undefined) {
    clearTimeout(exchange.timer);
    exchange.timer = undefined;
  }
}

function answerFailure(exchange: Exchange, failure: UpstreamFailure): void {
  if (exchange.record) exchange.record.upstreamFailure = failure;
  const { status, message } = UPSTREAM_FAILURES[failure];
  const target = exchange.target;
  if (target instanceof ServerResponse) {
    if (target.headersSent) {
      // The status line is gone already: cut the connection so the truncation shows.
      target.destroy();
    } else if (exchange.mode === 'health') {
      sendError(target, 503, `The ${exchange.service} service is unreachable`, exchange.requestId, {
        status: 'down',
        service: exchange.service,
      });
    } else {
      sendError(target, status, message, exchange.requestId);
    }
  } else if (exchange.upgraded) {
    target.destroy();
  } else {
    writeSocketError(target, status, message, exchange.requestId);
  }
}

function onUpstreamTimeout(exchange: Exchange): void {
  exchange.timer = undefined;
  clearConnectTimer(exchange);
  exchange.answered = true;
  exchange.proxyReq?.destroy();
  reportOutcome(exchange, false);
  logger.warn(`upstream timeout service=${exchange.service} requestId=${exchange.requestId}`);
  answerFailure(exchange, 'timeout');
}

function limitBody(req: IncomingMessage, exchange: Exchange, maxBodyBytes: number): void {
  let received = 0;
  const count = (chunk: Buffer) => {
    received += chunk.length;
    if (received <= maxBodyBytes) return;
    req.off('data', count);
    exchange.answered = true;
    settle(exchange);
    exchange.proxyReq?.destroy();
    if (exchange.target instanceof ServerResponse) {
      exchange.target.setHeader('connection', 'close');
      sendError(exchange.target, 413, BODY_TOO_LARGE, exchange.requestId);
    }
  };
  req.on('data', count);
}

function ms(value: number): string {
  return value.toFixed(3);
}

/** `Server-Timing`: the gateway's own time, the upstream's time to first byte, and their sum. */
function serverTiming(record: RequestRecord, now: number): string {
  const upstream = now - (record.upstreamSentAt ?? now);
  const total = now - record.startedAt;
  return `gw;dur=${ms(total - upstream)}, upstream;dur=${ms(upstream)}, total;dur=${ms(total)}`;
}

/**
 * The gateway's hooks into http-proxy-middleware (its default plugins are ejected): header
 * policy and timing on the response, trailers, body limits, the time-to-first-byte limit, and
 * the error table.
 */
export const exchangePlugin: Plugin = (proxyServer) => {
  proxyServer.on('proxyReq', (proxyReq, req) => {
    const exchange = exchangeOf(req);
    if (!exchange) return;
    exchange.proxyReq = proxyReq;
    if (exchange.answered) {
      proxyReq.destroy();
      return;
    }
    if (exchange.record) exchange.record.upstreamSentAt = performance.now();
    const socket = proxyReq.socket;
    if (socket?.connecting) {
      exchange.connectTimer = setTimeout(onConnectTimeout, exchange.connectTimeoutMs, exchange);
      socket.once('connect', () => clearConnectTimer(exchange));
    }
    // Only a chunked body can carry trailers, or outgrow a limit its length did not announce.
    if (req.headers['transfer-encoding'] !== undefined) {
      // Registered before http-proxy's pipe, so the trailers go out before the end of the body.
      req.once('end', () => {
        if (req.rawTrailers.length > 0) proxyReq.addTrailers(req.trailers);
      });
      if (exchange.maxBodyBytes !== undefined) limitBody(req, exchange, exchange.maxBodyBytes);
    }
  });
  proxyServer.on('proxyReqWs', (proxyReq, req) => {
    const exchange = exchangeOf(req);
    if (!exchange) return;
    exchange.proxyReq = proxyReq;
    proxyReq.once('upgrade', () => {
      settle(exchange);
      exchange.upgraded = true;
    });
    proxyReq.once('response', () => settle(exchange));
  });
  proxyServer.on('proxyRes', (proxyRes, req, res) => {
    const exchange = exchangeOf(req);
    settle(exchange);
    if (!exchange || exchange.answered) return;
    exchange.responded = true;
    reportOutcome(exchange, (proxyRes.statusCode ?? 502) < 500);
    const idle = exchange.idleTimeoutMs;
    if (idle > 0 && !String(proxyRes.headers['content-type']).startsWith('text/event-stream')) {
      proxyRes.setTimeout(idle, () =>
        proxyRes.destroy(Object.assign(new Error('upstream body idle'), { code: 'ESTREAMIDLE' })),
      );
    }
    const record = exchange.record;
    if (record) {
      const now = performance.now();
      record.upstreamFirstByteAt = now;
      if (exchange.hooks.serverTiming) {
        const own = serverTiming(record, now);
        const theirs = proxyRes.headers['server-timing'];
        proxyRes.headers['server-timing'] = theirs ? `${theirs}, ${own}` : own;
      }
    }
    if (proxyRes.headers['transfer-encoding'] !== undefined) {
      proxyRes.once('end', () => {
        if (proxyRes.rawTrailers.length > 0) res.addTrailers(proxyRes.trailers);
      });
    }
    applyResponseHeaderPolicy(proxyRes.headers, res.shouldKeepAlive, exchange.requestId);
    exchange.hooks.onUpstreamHeaders(proxyRes.headers, res);
  });
  proxyServer.on('econnreset', (_err, req) => settle(exchangeOf(req)));
  proxyServer.on('error', (err, req, target) => {
    const exchange = req && exchangeOf(req);
    settle(exchange);
    if (!exchange || !target) {
      target?.destroy();
      return;
    }
    if (exchange.answered) return;
    const failure = classifyUpstreamError(err);
    if (!exchange.responded) reportOutcome(exchange, false);
    if (!exchange.responded && exchange.hooks.retry(exchange, err as NodeJS.ErrnoException)) {
      logger.warn(
        `retrying on another instance after ${failure} service=${exchange.service} requestId=${exchange.requestId}`,
      );
      return;
    }
    logger.warn(
      `upstream ${failure} service=${exchange.service} requestId=${exchange.requestId} code=${(err as NodeJS.ErrnoException).code ?? 'none'}`,
    );
    // After the response head, the body stream ends or is cut by http-proxy itself (a truncated
    // body destroys the client connection). A complete bodiless 204 or 304 followed by stray
    // bytes fails the upstream socket but still reaches the client as the upstream sent it.
    if (exchange.responded) {
      if (exchange.record) exchange.record.upstreamFailure = failure;
      return;
    }
    answerFailure(exchange, failure);
  });
};
