import type { Agent, IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { createProxyMiddleware, type Plugin, type RequestHandler } from 'http-proxy-middleware';
import { BODY_TOO_LARGE } from '@helix/gateway-edge';
import {
  acceptResponseHead,
  bodyIdleError,
  clearConnectTimer,
  type Exchange,
  exchangeOf,
  failExchange,
  idleLimited,
  onConnectTimeout,
  refuseRequest,
  requestSent,
  settle,
} from './exchange';

/**
 * An instance's streaming proxy on its `node:http` agent, built once: it carries chunked
 * uploads (undici cannot send request trailers, and the route's body limit is counted while
 * the body streams) and WebSocket upgrades.
 */
export function createHttpProxy(target: URL, agent: Agent): RequestHandler {
  return createProxyMiddleware({
    // A URL object, not a string: httpxy would parse a string again on every request.
    target,
    agent,
    ejectPlugins: true,
    plugins: [exchangePlugin],
  });
}

/** Sends the exchange's request (a chunked body) through its instance's http-proxy. */
export function dispatchOnHttpProxy(exchange: Exchange): void {
  void exchange.instance.proxy(exchange.req, exchange.target as ServerResponse);
}

function limitBody(req: IncomingMessage, exchange: Exchange, maxBodyBytes: number): void {
  let received = 0;
  const count = (chunk: Buffer) => {
    received += chunk.length;
    if (received <= maxBodyBytes) return;
    req.off('data', count);
    refuseRequest(exchange, 413, BODY_TOO_LARGE);
  };
  req.on('data', count);
}

const exchangePlugin: Plugin = (proxyServer) => {
  proxyServer.on('proxyReq', (proxyReq, req) => {
    const exchange = exchangeOf(req);
    if (!exchange) return;
    exchange.proxyReq = proxyReq;
    if (exchange.answered) {
      proxyReq.destroy();
      return;
    }
    if (exchange.record) exchange.record.upstreamSentAt = performance.now();
    // 'finish': the last byte of the request is handed to the socket.
    proxyReq.once('finish', () => requestSent(exchange));
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
    const headers = acceptResponseHead(exchange, proxyRes.statusCode ?? 502, proxyRes.headers, res);
    if (!headers) return;
    // http-proxy copies the response's headers to the client after this event.
    proxyRes.headers = headers;
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
