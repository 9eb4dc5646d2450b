import type { Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { resolveRequestId, writeSocketError } from '@helix/gateway-edge';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { GatewayPipeline } from '@helix/gateway-router';

/**
 * Puts the gateway's pipeline in front of Express on Nest's own HTTP server: proxied prefixes
 * never enter Express's router or middleware chain, while Nest keeps `/health`, `/info` and
 * the 404. Call it after `NestFactory.create` and before `listen`.
 */
export function attachGateway(app: NestExpressApplication): void {
  const pipeline = app.get(GatewayPipeline);
  const express = app.getHttpAdapter().getInstance();
  express.disable('x-powered-by');
  const server: Server = app.getHttpServer();
  server.removeListener('request', express);
  server.on('request', pipeline.createRequestListener(express));
  server.on('upgrade', (req, socket, head) => pipeline.handleUpgrade(req, socket as Socket, head));
  server.on('clientError', answerClientError);
  // SECURITY: the gateway is no forward proxy; a CONNECT tunnel would reach any host.
  server.on('connect', (req, socket: Duplex) => {
    writeSocketError(
      socket,
      405,
      'CONNECT is not supported',
      resolveRequestId(req.headers['x-request-id']),
    );
    (socket as Socket).setTimeout(1000, () => socket.destroy());
  });
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
