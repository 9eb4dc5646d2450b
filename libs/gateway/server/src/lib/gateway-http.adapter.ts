import { createServer } from 'node:http';
import { ExpressAdapter } from '@nestjs/platform-express';
import type { GatewayConfig } from '@helix/gateway-config';

/**
 * Nest's Express adapter on an HTTP server built with the gateway's limits (CONTRACT.md
 * "Hard edges"): Nest creates its server before any module exists, so the limits go in here.
 */
export class GatewayHttpAdapter extends ExpressAdapter {
  constructor(private readonly config: GatewayConfig) {
    super();
  }

  override initHttpServer(): void {
    const { config } = this;
    const server = createServer(
      {
        // Beyond it, llhttp stops parsing and the client gets 431.
        maxHeaderSize: config.MAX_HEADER_BYTES,
        // Slowloris: the headers must arrive within headersTimeout, the whole request within
        // requestTimeout; both are checked every second instead of Node's default 30 s.
        headersTimeout: config.HEADERS_TIMEOUT_MS,
        requestTimeout: config.REQUEST_TIMEOUT_MS,
        connectionsCheckingInterval: 1000,
        keepAliveTimeout: config.KEEP_ALIVE_TIMEOUT_MS,
        // The pipeline refuses an HTTP/1.1 request without Host itself, with a JSON body.
        requireHostHeader: false,
      },
      this.getInstance(),
    );
    // Parse one field more than allowed, so that a request over the limit is seen and refused
    // (431) rather than silently cut short.
    server.maxHeadersCount = config.MAX_HEADERS_COUNT + 1;
    this.setHttpServer(server);
  }
}
