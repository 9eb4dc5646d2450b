import type { ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { Logger } from '@nestjs/common';
import type { RequestHandler } from 'http-proxy-middleware';
import type { Pool } from 'undici';
import {
  hasBody,
  isHttp2Response,
  sendError,
  setConnectionClose,
  writeSocketError,
} from '@helix/gateway-edge';
import {
  answerUpstreamTry,
  failUpstreamTry,
  type RequestRecord,
} from '@helix/gateway-observability';
import { classifyUpstreamError, UPSTREAM_FAILURES, type UpstreamFailure } from './upstream-errors';

/**
 * What an exchange needs of the instance that serves a try. UpstreamInstance implements it;
 * the engines depend on this, not on the class that builds their pools.
 */
export interface ExchangeEndpoint {
  readonly index: number;
  /** `host[:port]`, the Host header the instance receives. */
  readonly host: string;
  /** Where the instance is reached. */
  readonly url: URL;
  readonly pool: Pool;
  readonly proxy: RequestHandler;
  /** When an ejection ends (0: not ejected). */
  readonly ejectedUntil: number;
  release(): void;
  /** True when the success ends an ejection. */
  reportSuccess(): boolean;
  /** True when the failure ejects the instance. */
  reportFailure(now: number): boolean;
}

/** What a retry needs of the service: another instance, and the budget to spend on it. */
export interface ExchangeUpstream {
  pick(now: number, avoid?: ExchangeEndpoint): ExchangeEndpoint | undefined;
  readonly budget: { tryRetry(now: number): boolean };
}

/** The try under way on one engine, as the exchange cuts it. */
export interface EngineTry {
  cancel(err?: Error): void;
}

/**
 * How a failed exchange is answered: `route` with the error table (502/504), `health` with
 * the contract's `503 { "status": "down" }` of `/health/<service>`.
 */
export type FailureMode = 'route' | 'health';

/** What the pipeline decides once, at boot, for every exchange. */
export interface ExchangeHooks {
  /** The pipeline's header policies on an upstream's response headers: the client's copy. */
  readonly onUpstreamHeaders: (
    headers: IncomingHttpHeaders,
    res: ServerResponse,
    requestId: string,
  ) => IncomingHttpHeaders;
  /** Add `Server-Timing: gw, upstream, total` to proxied responses. */
  readonly serverTiming: boolean;
  /** Tries the request on another instance after a failure; true when it did. */
  readonly retry: (exchange: Exchange, failure: UpstreamFailure) => boolean;
}

/** What the pipeline knows of a request when it hands it to an upstream. */
export interface ExchangeInit {
  readonly req: IncomingMessage;
  readonly requestId: string;
  readonly service: string;
  readonly upstream: ExchangeUpstream;
  /** The instance serving the current try. */
  instance: ExchangeEndpoint;
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
  /** The current try, as undici carries it (a request whose body has a known length). */
  dispatch: EngineTry | undefined;
  /** The current try, as http-proxy carries it (a chunked body, or a WebSocket upgrade). */
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

/**
 * Opens the exchange of a request that is about to be proxied. Its time-to-first-byte limit
 * counts, as Envoy's route timeout and nginx's `proxy_read_timeout` do, from the moment the
 * request has been sent in full: at once for a request without a body, else when the engine
 * has written the body's last byte ({@link requestSent}), so a long upload is never cut while
 * it moves (slow bodies are the body guard's business). It stops at the response's head, so a
 * long download or event stream is never cut by it either.
 */
export function openExchange(init: ExchangeInit, hooks: ExchangeHooks): Exchange {
  const exchange: Exchange = {
    ...init,
    hooks,
    timer: undefined,
    connectTimer: undefined,
    tries: 1,
    released: false,
    dispatch: undefined,
    proxyReq: undefined,
    answered: false,
    responded: false,
    upgraded: false,
  };
  if (!hasBody(init.req)) requestSent(exchange);
  (init.req as Tagged)[EXCHANGE] = exchange;
  // `on`, not `once`: the target closes once, and `once` wraps every listener anew.
  init.target.on('close', () => onTargetClose(exchange));
  return exchange;
}

/**
 * The request has gone to the upstream in full: the time-to-first-byte clock starts, unless
 * it runs already (a retry keeps the first try's clock) or the answer has come already (an
 * upstream may answer before it reads the body, and is relayed at once).
 */
export function requestSent(exchange: Exchange): void {
  if (exchange.timer !== undefined || exchange.responded || exchange.answered) return;
  exchange.timer = setTimeout(onUpstreamTimeout, exchange.timeoutMs, exchange);
}

/**
 * The gateway refuses the request while its body streams (too large, too slow): the upstream
 * side is cut and the client answered with `status`, on a connection that then closes; when
 * the upstream's answer has begun already, the connection is cut so the truncation shows.
 */
export function refuseRequest(exchange: Exchange, status: number, message: string): void {
  if (exchange.answered) return;
  exchange.answered = true;
  settle(exchange);
  abortUpstream(exchange);
  const target = exchange.target;
  if (!isResponse(target)) return;
  if (target.headersSent) {
    target.destroy();
    return;
  }
  setConnectionClose(target);
  sendError(target, status, message, exchange.requestId);
}

function onTargetClose(exchange: Exchange): void {
  // `writableEnded`, not `writableFinished`: an HTTP/2 stream reset by its client reports
  // itself finished, but the gateway never ended its answer.
  if (!(exchange.target as ServerResponse).writableEnded) {
    // The client left before the end: nothing waits for the rest of the upstream's answer,
    // and its timers stop. A client's departure says nothing of the upstream: left running,
    // the timeout would count it as the instance's failure and could eject a healthy one.
    settle(exchange);
    exchange.answered = true;
    exchange.dispatch?.cancel();
  }
  release(exchange);
}

/** The instance the exchange holds is free again (its in-flight count drops). */
function release(exchange: Exchange): void {
  if (exchange.released) return;
  exchange.released = true;
  exchange.instance.release();
}

/** Moves the exchange to another instance for a retry; the caller has picked it. */
export function moveExchange(exchange: Exchange, next: ExchangeEndpoint): void {
  clearConnectTimer(exchange);
  exchange.instance.release();
  exchange.instance = next;
  exchange.tries++;
  exchange.dispatch = undefined;
  exchange.proxyReq = undefined;
}

/** Cuts the current try's upstream side, whichever engine carries it. */
function abortUpstream(exchange: Exchange, err?: Error): void {
  exchange.proxyReq?.destroy(err);
  exchange.dispatch?.cancel(err);
}

export function clearConnectTimer(exchange: Exchange): void {
  if (exchange.connectTimer !== undefined) {
    clearTimeout(exchange.connectTimer);
    exchange.connectTimer = undefined;
  }
}

export function onConnectTimeout(exchange: Exchange): void {
  exchange.connectTimer = undefined;
  const err = Object.assign(new Error('upstream connect timeout'), { code: 'ECONNECTTIMEOUT' });
  if (exchange.proxyReq) {
    // http-proxy reports the destroyed request as an 'error', which fails the exchange.
    exchange.proxyReq.destroy(err);
  } else if (exchange.dispatch) {
    exchange.dispatch.cancel(err);
    failExchange(exchange, err);
  }
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

export function exchangeOf(req: IncomingMessage): Exchange | undefined {
  return (req as Tagged)[EXCHANGE];
}

export function settle(exchange: Exchange | undefined): void {
  if (exchange === undefined) return;
  clearConnectTimer(exchange);
  if (exchange.timer !== undefined) {
    clearTimeout(exchange.timer);
    exchange.timer = undefined;
  }
}

/** An HTTP answer, over HTTP/1.1 or HTTP/2, rather than the socket of an upgrade. */
function isResponse(target: ServerResponse | Duplex): target is ServerResponse {
  return target instanceof ServerResponse || isHttp2Response(target);
}

function noteFailure(exchange: Exchange, failure: UpstreamFailure): void {
  if (!exchange.record) return;
  exchange.record.upstreamFailure = failure;
  exchange.record.upstreamInstance = exchange.instance.index;
}

function answerFailure(exchange: Exchange, failure: UpstreamFailure): void {
  noteFailure(exchange, failure);
  const { status, message } = UPSTREAM_FAILURES[failure];
  const target = exchange.target;
  if (isResponse(target)) {
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
  abortUpstream(exchange);
  reportOutcome(exchange, false);
  if (exchange.record?.upstreamSpan) failUpstreamTry(exchange.record, 'timeout');
  logger.warn(`upstream timeout service=${exchange.service} requestId=${exchange.requestId}`);
  answerFailure(exchange, 'timeout');
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

/** An idle limit applies to the response body: set on the route, and not server-sent events. */
export function idleLimited(exchange: Exchange, headers: IncomingHttpHeaders): boolean {
  return (
    exchange.idleTimeoutMs > 0 && !String(headers['content-type']).startsWith('text/event-stream')
  );
}

export function bodyIdleError(): Error {
  return Object.assign(new Error('upstream body idle'), { code: 'ESTREAMIDLE' });
}

/**
 * The upstream's response head arrived: the timers stop, the instance's outcome is counted,
 * and the headers get `Server-Timing` and the gateway's policies. Returns the headers for the
 * client, or undefined when the gateway has answered already, so the head goes nowhere.
 */
export function acceptResponseHead(
  exchange: Exchange,
  statusCode: number,
  headers: IncomingHttpHeaders,
  res: ServerResponse,
): IncomingHttpHeaders | undefined {
  settle(exchange);
  if (exchange.answered) return undefined;
  exchange.responded = true;
  reportOutcome(exchange, statusCode < 500);
  const record = exchange.record;
  if (record?.upstreamSpan) answerUpstreamTry(record, statusCode);
  if (record) {
    const now = performance.now();
    record.upstreamFirstByteAt = now;
    if (exchange.hooks.serverTiming) {
      const own = serverTiming(record, now);
      const theirs = headers['server-timing'];
      headers['server-timing'] = theirs ? `${theirs}, ${own}` : own;
    }
  }
  return exchange.hooks.onUpstreamHeaders(headers, res, exchange.requestId);
}

/**
 * An upstream failure, from either engine: retried on another instance when that is safe,
 * answered from the error table before the response head, and after it a cut connection.
 */
export function failExchange(exchange: Exchange, err: Error): void {
  settle(exchange);
  if (exchange.answered) return;
  const failure = classifyUpstreamError(err);
  if (exchange.record?.upstreamSpan) failUpstreamTry(exchange.record, failure);
  if (!exchange.responded) reportOutcome(exchange, false);
  if (!exchange.responded && exchange.hooks.retry(exchange, failure)) {
    logger.warn(
      `retrying on another instance after ${failure} service=${exchange.service} requestId=${exchange.requestId}`,
    );
    return;
  }
  logger.warn(
    `upstream ${failure} service=${exchange.service} requestId=${exchange.requestId} code=${(err as NodeJS.ErrnoException).code ?? 'none'}`,
  );
  // After the response head, the engine has already ended or cut the client's response
  // (UndiciDispatch.onError, or http-proxy's own stream): a truncated body destroys the client
  // connection, while a complete bodiless 204 or 304 followed by stray bytes fails the upstream
  // socket but still reaches the client as the upstream sent it. Only the failure is recorded.
  if (exchange.responded) {
    noteFailure(exchange, failure);
    return;
  }
  answerFailure(exchange, failure);
}
