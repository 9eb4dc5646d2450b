import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import type { Http2SecureServer } from 'node:http2';
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { GATEWAY_CONFIG, type GatewayConfig } from '@helix/gateway-config';
import { isHttp2, resolveRequestId, sendError, writeSocketError } from '@helix/gateway-edge';
import { GatewayMetrics } from '@helix/gateway-observability';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { GatewayPipeline } from '@helix/gateway-router';
import { http2Express } from './http2-express';
import { TlsConnections } from './tls-connections';

const NO_CONNECT = 'CONNECT is not supported';

/**
 * Puts the gateway's pipeline in front of Express on Nest's own HTTP server: proxied prefixes
 * never enter Express's router or middleware chain, while Nest keeps `/health`, `/info` and
 * the 404, over HTTP/1.1 and HTTP/2 alike. Call it after `NestFactory.create` and before
 * `listen`. On a TLS listener it returns its connections, for the drain.
 */
export function attachGateway(app: NestExpressApplication): TlsConnections | undefined {
  const pipeline = app.get(GatewayPipeline);
  const express = app.getHttpAdapter().getInstance();
  express.disable('x-powered-by');
  const server: Server = app.getHttpServer();
  const overHttp2 = http2Express(express);
  const nest: RequestListener = (req, res) =>
    isHttp2(req) ? overHttp2(req, res) : express(req, res);
  server.removeListener('request', express);
  server.on('request', pipeline.createRequestListener(nest));
  server.on('upgrade', (req, socket, head) => pipeline.handleUpgrade(req, socket as Socket, head));
  server.on('clientError', answerClientError);
  // SECURITY: the gateway is no forward proxy; a CONNECT tunnel would reach any host. Over
  // HTTP/1.1 it comes with the bare socket, over HTTP/2 as a stream with its response.
  server.on('connect', (req: IncomingMessage, socketOrResponse: Duplex | ServerResponse) => {
    const requestId = resolveRequestId(req.headers['x-request-id']);
    if (isHttp2(req)) {
      sendError(socketOrResponse as ServerResponse, 405, NO_CONNECT, requestId);
      return;
    }
    const socket = socketOrResponse as Socket;
    writeSocketError(socket, 405, NO_CONNECT, requestId);
    socket.setTimeout(1000, () => socket.destroy());
  });
  const config = app.get<GatewayConfig>(GATEWAY_CONFIG);
  if (config.TLS_CERT_FILE === undefined) return undefined;
  return new TlsConnections(
    server as unknown as Http2SecureServer,
    config.KEEP_ALIVE_TIMEOUT_MS,
    app.get(GatewayMetrics),
  );
}

const CLIENT_ERRORS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'The request headers are too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'The request was not received in time'],
  HPE_HEADER_TIMEOUT: [408, 'The request headers were not received in time'],
};

/**
 * A request llhttp refused (bad framing, CL with TE, obs-fold, bare CR or LF, oversized
 * headers) or a client too slow to send it: a JSON error when nothing was written on that
 * connection yet, then the connection is closed, as Node's own handler does.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  const net = socket as Socket;
  if (err.code === 'ECONNRESET' || !net.writable || net.bytesWritten > 0) {
    net.destroy();
    return;
  }
  const [status, message] = CLIENT_ERRORS[err.code ?? ''] ?? [400, 'The request is malformed'];
  // end() flushes the answer before closing; a client that never closes its side is cut off.
  writeSocketError(net, status, message, randomUUID());
  net.setTimeout(1000, () => net.destroy());
}
