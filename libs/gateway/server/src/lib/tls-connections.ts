import type { Http2SecureServer, ServerHttp2Session } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { GatewayMetrics } from '@helix/gateway-observability';

/**
 * The connections of the TLS listener, for what Node's HTTP/2 server leaves to its owner:
 * an idle timeout per HTTP/2 session, a graceful GOAWAY to every session when the drain
 * begins, and cutting every connection (HTTP/2 or HTTP/1.1) when the drain runs out of time.
 */
export class TlsConnections {
  private readonly sockets = new Set<TLSSocket>();
  private readonly sessions = new Set<ServerHttp2Session>();

  constructor(server: Http2SecureServer, idleTimeoutMs: number, metrics: GatewayMetrics) {
    server.on('secureConnection', (socket: TLSSocket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    server.on('session', (session) => {
      this.sessions.add(session);
      metrics.http2SessionsOpened.inc();
      metrics.http2Sessions.inc();
      // As nginx's keepalive_timeout for HTTP/2: a session with no frames for that long is
      // closed gracefully, so an idle browser tab does not hold a connection for ever.
      session.setTimeout(idleTimeoutMs, () => session.close());
      session.once('close', () => {
        this.sessions.delete(session);
        metrics.http2Sessions.dec();
      });
    });
  }

  /** GOAWAY to every session: streams in flight finish, the next requests go elsewhere. */
  goAway(): void {
    for (const session of this.sessions) if (!session.closed) session.close();
  }

  /** Cuts every connection still open. */
  destroyAll(): void {
    for (const session of this.sessions) session.destroy();
    for (const socket of this.sockets) socket.destroy();
  }
}
