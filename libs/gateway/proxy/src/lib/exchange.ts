import {
  type ClientRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  ServerResponse,
} from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Duplex, Readable } from 'node:stream';
import { Logger } from '@nestjs/common';
import type { Plugin } from 'http-proxy-middleware';
import type { Dispatcher } from 'undici';
import { sendError, writeSocketError } from '@helix/gateway-edge';
import type { RequestRecord } from '@helix/gateway-observability';
import { applyResponseHeaderPolicy } from './header-policy';
import { headersFromRaw } from './raw-headers';
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
  readonly retry: (exchange: Exchange, failure: UpstreamFailure) => boolean;
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
  /** The current try, as undici carries it (a request whose body has a known length). */
  dispatch: UndiciDispatch | undefined;
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
    dispatch: undefined,
    proxyReq: undefined,
    answered: false,
    responded: false,
    upgraded: false,
  };
  exchange.timer = setTimeout(onUpstreamTimeout, init.timeoutMs, exchange);
  (init.req as Tagged)[EXCHANGE] = exchange;
  init.target.once('close', () => onTargetClose(exchange));
  return exchange;
}

function onTargetClose(exchange: Exchange): void {
  // The client left before the end: nothing waits for the rest of the upstream's answer.
  const { target, dispatch } = exchange;
  if (dispatch && !(target as ServerResponse).writableFinished) dispatch.cancel();
  release(exchange);
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
  exchange.dispatch = undefined;
  exchange.proxyReq = undefined;
}

/**
 * Sends the exchange's request to its instance. undici carries every request whose body has a
 * known length (or none): it costs about a quarter less CPU a request than http-proxy over
 * `node:http` (README, Performance). A chunked body goes through http-proxy, because undici
 * cannot send request trailers and the route's body limit is counted while it streams.
 */
export function forward(exchange: Exchange): void {
  const { req, target } = exchange;
  if (req.headers['transfer-encoding'] !== undefined) {
    void exchange.instance.proxy(req, target as ServerResponse);
    return;
  }
  const dispatch = new UndiciDispatch(exchange, target as ServerResponse);
  exchange.dispatch = dispatch;
  if (exchange.record) exchange.record.upstreamSentAt = performance.now();
  dispatch.start();
  // A pooled socket takes the request at once; only a new connection needs the limit.
  if (!dispatch.connected && !dispatch.cancelled) {
    exchange.connectTimer = setTimeout(onConnectTimeout, exchange.connectTimeoutMs, exchange);
  }
}

/** Cuts the current try's upstream side, whichever engine carries it. */
function abortUpstream(exchange: Exchange, err?: Error): void {
  exchange.proxyReq?.destroy(err);
  exchange.dispatch?.cancel(err);
}

function clearConnectTimer(exchange: Exchange): void {
  if (exchange.connectTimer !== undefined) {
    clearTimeout(exchange.connectTimer);
    exchange.connectTimer = undefined;
  }
}

function onConnectTimeout(exchange: Exchange): void {
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
  abortUpstream(exchange);
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
    if (!exchange) return;
    const { headers } = proxyRes;
    if (!acceptResponseHead(exchange, proxyRes.statusCode ?? 502, headers, res)) return;
    if (idleLimited(exchange, headers)) {
      proxyRes.setTimeout(exchange.idleTimeoutMs, () => proxyRes.destroy(bodyIdleError()));
    }
    if (headers['transfer-encoding'] !== undefined) {
      proxyRes.once('end', () => {
        if (proxyRes.rawTrailers.length > 0) res.addTrailers(proxyRes.trailers);
      });
    }
  });
  proxyServer.on('econnreset', (_err, req) => settle(exchangeOf(req)));
  proxyServer.on('error', (err, req, target) => {
    const exchange = req && exchangeOf(req);
    if (!exchange || !target) {
      target?.destroy();
      return;
    }
    failExchange(exchange, err);
  });
};

/** An idle limit applies to the response body: set on the route, and not server-sent events. */
function idleLimited(exchange: Exchange, headers: IncomingHttpHeaders): boolean {
  return (
    exchange.idleTimeoutMs > 0 && !String(headers['content-type']).startsWith('text/event-stream')
  );
}

function bodyIdleError(): Error {
  return Object.assign(new Error('upstream body idle'), { code: 'ESTREAMIDLE' });
}

/**
 * The upstream's response head arrived: the timers stop, the instance's outcome is counted,
 * and the headers get `Server-Timing` and the gateway's policies, in place. Returns false when
 * the gateway has answered already, so the head goes nowhere.
 */
function acceptResponseHead(
  exchange: Exchange,
  statusCode: number,
  headers: IncomingHttpHeaders,
  res: ServerResponse,
): boolean {
  settle(exchange);
  if (exchange.answered) return false;
  exchange.responded = true;
  reportOutcome(exchange, statusCode < 500);
  const record = exchange.record;
  if (record) {
    const now = performance.now();
    record.upstreamFirstByteAt = now;
    if (exchange.hooks.serverTiming) {
      const own = serverTiming(record, now);
      const theirs = headers['server-timing'];
      headers['server-timing'] = theirs ? `${theirs}, ${own}` : own;
    }
  }
  applyResponseHeaderPolicy(headers, res.shouldKeepAlive, exchange.requestId);
  exchange.hooks.onUpstreamHeaders(headers, res);
  return true;
}

/**
 * An upstream failure, from either engine: retried on another instance when that is safe,
 * answered from the error table before the response head, and after it a cut connection.
 */
function failExchange(exchange: Exchange, err: Error): void {
  settle(exchange);
  if (exchange.answered) return;
  const failure = classifyUpstreamError(err);
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
    if (exchange.record) exchange.record.upstreamFailure = failure;
    return;
  }
  answerFailure(exchange, failure);
}

const resumeNothing = (): void => undefined;

/**
 * One try of an exchange on undici: the request goes out through the instance's pool, and the
 * response head, body (with backpressure) and trailers are written to the client as they come.
 */
class UndiciDispatch implements Dispatcher.DispatchHandler {
  /** A socket took the request: the connect limit no longer applies. */
  connected = false;
  /** The gateway has given up on this try; whatever undici reports from here on goes nowhere. */
  cancelled = false;
  private bodiless = false;
  /** undici's resume of a paused response, set with the head. */
  private resume: () => void = resumeNothing;
  private abort: ((err?: Error) => void) | undefined;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly exchange: Exchange,
    private readonly res: ServerResponse,
  ) {}

  start(): void {
    const { req, instance } = this.exchange;
    const length = req.headers['content-length'];
    instance.pool.dispatch(
      {
        path: req.url ?? '/',
        method: req.method as Dispatcher.HttpMethod,
        headers: req.headers,
        // An iterator that leaves the request open at its end: undici destroys a stream body
        // whose `autoDestroy` is off, as IncomingMessage's is, and with it the client's socket.
        // undici takes any async iterable as a body; its types name only the stream.
        body:
          length === undefined || length === '0'
            ? null
            : (req.iterator({ destroyOnReturn: false }) as unknown as Readable),
      },
      this,
    );
  }

  /** Stops this try: its request is aborted once it has a socket, and its events are dropped. */
  cancel(err?: Error): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.clearIdleTimer();
    this.abort?.(err);
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.cancelled) {
      abort();
      return;
    }
    this.abort = abort;
    this.connected = true;
    clearConnectTimer(this.exchange);
  }

  onHeaders(
    statusCode: number,
    rawHeaders: Buffer[],
    resume: () => void,
    statusText: string,
  ): boolean {
    if (this.cancelled) return false;
    const { exchange, res } = this;
    const headers = headersFromRaw(rawHeaders);
    if (!acceptResponseHead(exchange, statusCode, headers, res)) return false;
    this.bodiless = statusCode === 204 || statusCode === 304 || exchange.req.method === 'HEAD';
    if (idleLimited(exchange, headers)) {
      this.idleTimer = setTimeout(() => this.onBodyIdle(), exchange.idleTimeoutMs);
    }
    for (const name in headers) {
      const value = headers[name];
      if (value !== undefined) res.setHeader(name, value);
    }
    if (statusText !== '') res.statusMessage = statusText;
    res.writeHead(statusCode);
    this.resume = resume;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.cancelled) return true;
    this.idleTimer?.refresh();
    if (this.res.write(chunk)) return true;
    // The client reads slower than the upstream sends: undici pauses until the client drains.
    this.res.once('drain', this.resume);
    return false;
  }

  // Buffers at run time, whatever undici's types say (client-h1.js hands the parser's raw list).
  onComplete(rawTrailers: (Buffer | string)[] | null): void {
    this.clearIdleTimer();
    if (this.cancelled) return;
    if (rawTrailers && rawTrailers.length > 0) this.res.addTrailers(headersFromRaw(rawTrailers));
    this.res.end();
  }

  onError(err: Error): void {
    this.clearIdleTimer();
    if (this.cancelled) return;
    this.cancelled = true;
    if (this.exchange.responded) {
      // A response with no body (204, 304, or to HEAD) is whole at its head: what fails after
      // it is the upstream's connection (stray bytes), so the client still gets it as sent.
      // Otherwise only a cut connection shows the client that the body is short.
      if (this.bodiless) this.res.end();
      else this.res.destroy();
    }
    failExchange(this.exchange, err);
  }

  private onBodyIdle(): void {
    this.idleTimer = undefined;
    this.abort?.(bodyIdleError());
  }

  private clearIdleTimer(): void {
    if (this.idleTimer !== undefined) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
  }
}
