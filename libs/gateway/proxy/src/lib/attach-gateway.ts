import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { GatewayPipeline } from './gateway-pipeline';

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
}
