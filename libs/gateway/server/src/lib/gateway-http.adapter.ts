import { createServer, type RequestListener, type ServerOptions } from 'node:http';
import { createSecureServer } from 'node:http2';
import type { Server as TlsServer } from 'node:tls';
import { ExpressAdapter } from '@nestjs/platform-express';
import type { GatewayConfig } from '@helix/gateway-config';
import { GatewayHttp2Request } from '@helix/gateway-edge';
import { CertificateReloader } from './certificate-reloader';
import { secureContextOptions, type TlsPair } from './tls-certificate';

/** The pseudo-header fields of an HTTP/2 request: `:method`, `:scheme`, `:authority`, `:path`. */
const PSEUDO_HEADERS = 4;
/** Node's default, stated: the most an HTTP/2 session may buffer, in MiB. */
const MAX_SESSION_MEMORY_MB = 10;
/** nghttp2's rapid-reset guard (CVE-2023-44487), Node's defaults kept on explicitly. */
const STREAM_RESET_BURST = 1000;
const STREAM_RESET_RATE = 33;
/**
 * Streams refused past HTTP2_MAX_CONCURRENT_STREAMS before Node cuts the session. Node's 100
 * is reached first by a rapid reset against a proxy: a reset stream stays open on the server
 * until its upstream request is cancelled, so the client's next wave is refused, and that cut
 * sends no GOAWAY. Above the reset guard's burst, nghttp2's guard answers it, with a GOAWAY.
 */
const MAX_REJECTED_STREAMS = 2 * STREAM_RESET_BURST;

/**
 * Nest's Express adapter on an HTTP server built with the gateway's limits (CONTRACT.md
 * "Hard edges"): Nest creates its server before any module exists, so the limits go in here.
 * With a TLS pair, the server speaks TLS with HTTP/2 and HTTP/1.1 on the one port (ALPN);
 * without, cleartext HTTP/1.1.
 */
export class GatewayHttpAdapter extends ExpressAdapter {
  private reloader: CertificateReloader | undefined;

  constructor(
    private readonly config: GatewayConfig,
    private readonly tls?: TlsPair,
  ) {
    super();
  }

  override initHttpServer(): void {
    const { config } = this;
    const http1: ServerOptions = {
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
    };
    const listener = this.getInstance() as RequestListener;
    const server = this.tls ? this.createTlsServer(http1, listener) : createServer(http1, listener);
    // Parse one field more than allowed, so that a request over the limit is seen and refused
    // (431) rather than silently cut short.
    server.maxHeadersCount = config.MAX_HEADERS_COUNT + 1;
    this.setHttpServer(server as ReturnType<typeof createServer>);
  }

  override async close(): Promise<void> {
    this.reloader?.stop();
    await super.close();
  }

  /**
   * TLS 1.2+, ALPN `h2` then `http/1.1`: HTTP/1.1 connections get the same limits as over
   * cleartext (Node's HTTP/2 server takes the HTTP/1.1 options for them). HTTP/2 sessions get
   * HTTP2_MAX_CONCURRENT_STREAMS, bounded memory and nghttp2's rapid-reset guard; their header
   * limits leave room for the pipeline to answer 431 itself up to twice the configured ones,
   * and past that nghttp2 resets the stream before it takes any memory.
   */
  private createTlsServer(http1: ServerOptions, listener: RequestListener) {
    const { config } = this;
    const pair = this.tls as TlsPair;
    const server = createSecureServer(
      {
        ...http1,
        ...secureContextOptions(pair),
        allowHTTP1: true,
        Http2ServerRequest: GatewayHttp2Request,
        maxSessionMemory: MAX_SESSION_MEMORY_MB,
        maxHeaderListPairs: 2 * config.MAX_HEADERS_COUNT + PSEUDO_HEADERS,
        settings: {
          maxConcurrentStreams: config.HTTP2_MAX_CONCURRENT_STREAMS,
          maxHeaderListSize: 2 * config.MAX_HEADER_BYTES,
        },
        streamResetBurst: STREAM_RESET_BURST,
        streamResetRate: STREAM_RESET_RATE,
        maxSessionRejectedStreams: MAX_REJECTED_STREAMS,
      },
      listener as unknown as Parameters<typeof createSecureServer>[1],
    );
    if (config.TLS_CERT_FILE && config.TLS_KEY_FILE) {
      this.reloader = new CertificateReloader(
        server as unknown as TlsServer,
        config.TLS_CERT_FILE,
        config.TLS_KEY_FILE,
        pair,
      );
      this.reloader.start();
    }
    return server as typeof server & { maxHeadersCount: number };
  }
}
