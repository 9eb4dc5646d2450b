import type { IncomingHttpHeaders } from 'node:http';

/** The gateway's pseudonym in `Via` (RFC 9110 §7.6.3). */
export const VIA_PSEUDONYM = 'helix-gateway';

// RFC 9110 §7.6.1 hop-by-hop fields, plus the non-standard Keep-Alive and Proxy-Connection,
// and Proxy-Authorization/-Authenticate, which belong to the hop that asked for them.
// `Trailer` is end-to-end (RFC 9110 §6.6.2): it goes along with the trailers it announces.
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
] as const;

// SECURITY: `Connection` may name extra hop-by-hop fields, but never the framing, the routing
// or what the gateway adds: `Connection: content-length` must not change how a body is read,
// and `Connection: x-forwarded-for` must not strip what the gateway adds.
const PROTECTED = new Set([
  'content-length',
  'transfer-encoding',
  'host',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-request-id',
  'via',
]);

function dropHopByHop(headers: IncomingHttpHeaders): void {
  const connection = headers.connection;
  if (connection !== undefined) {
    for (const token of connection.split(',')) {
      const name = token.trim().toLowerCase();
      if (name !== '' && !PROTECTED.has(name) && name in headers) delete headers[name];
    }
  }
  for (const name of HOP_BY_HOP) {
    if (name in headers) delete headers[name];
  }
}

/**
 * HTTP/2's pseudo-header fields (`:method`, `:path`, `:scheme`, `:authority`) describe the
 * client's stream; an HTTP/1.1 upstream must never see them (RFC 9113 §8.3).
 */
function dropPseudoHeaders(headers: IncomingHttpHeaders): void {
  for (const name in headers) {
    if (name.charCodeAt(0) === 0x3a) delete headers[name];
  }
}

function append(existing: string | string[] | undefined, value: string): string {
  if (existing === undefined || existing === '') return value;
  return `${Array.isArray(existing) ? existing.join(', ') : existing}, ${value}`;
}

/** What the gateway knows about one request when it forwards it. */
export interface ForwardedRequest {
  readonly clientIp: string | undefined;
  /** The client's protocol version, as Node gives it: `1.0`, `1.1` or `2.0`. */
  readonly httpVersion: string;
  /** Whether the client's connection is TLS, for `X-Forwarded-Proto`. */
  readonly encrypted: boolean;
  readonly requestId: string;
  /** `host[:port]` of the chosen upstream. */
  readonly upstreamHost: string;
}

/**
 * Rewrites the request headers in place for the upstream: hop-by-hop fields out (RFC 9110
 * §7.6.1), the forwarding fields in. Only the framing survives: a chunked body stays chunked,
 * and a WebSocket upgrade keeps its `Connection: upgrade` and `Upgrade`.
 */
export function applyRequestHeaderPolicy(
  headers: IncomingHttpHeaders,
  forwarded: ForwardedRequest,
  upgrade: boolean,
): void {
  const chunked = headers['transfer-encoding'] !== undefined;
  const upgradeTo = headers.upgrade;
  // Over HTTP/2 `:authority` stands for Host (RFC 9113 §8.3.1).
  const ownHost = headers.host ?? (headers[':authority'] as string | undefined);
  if (forwarded.httpVersion === '2.0') dropPseudoHeaders(headers);
  dropHopByHop(headers);
  // The gateway answered `Expect: 100-continue` itself; the upstream gets the body directly.
  if ('expect' in headers) delete headers.expect;
  if (chunked) headers['transfer-encoding'] = 'chunked';
  if (upgrade && upgradeTo !== undefined) {
    headers.connection = 'upgrade';
    headers.upgrade = upgradeTo;
  }
  headers.host = forwarded.upstreamHost;
  if (forwarded.clientIp !== undefined) {
    headers['x-forwarded-for'] = append(headers['x-forwarded-for'], forwarded.clientIp);
  }
  headers['x-forwarded-proto'] = forwarded.encrypted ? 'https' : 'http';
  if (ownHost !== undefined) headers['x-forwarded-host'] = ownHost;
  else if ('x-forwarded-host' in headers) delete headers['x-forwarded-host'];
  // RFC 9110 §7.6.3 names HTTP/2 as `2`.
  const version = forwarded.httpVersion === '2.0' ? '2' : forwarded.httpVersion;
  headers.via = append(headers.via, `${version} ${VIA_PSEUDONYM}`);
  headers['x-request-id'] = forwarded.requestId;
}

/**
 * Rewrites an upstream's response headers in place for the client: its hop-by-hop fields
 * describe the upstream connection, not the client's, so they go; Node frames the body anew.
 * `connection` is the client connection's own `Connection`, or undefined over HTTP/2, which
 * has no connection-specific fields at all (RFC 9113 §8.2.2).
 */
export function applyResponseHeaderPolicy(
  headers: IncomingHttpHeaders,
  connection: 'keep-alive' | 'close' | undefined,
  requestId: string,
): void {
  dropHopByHop(headers);
  if (connection !== undefined) headers.connection = connection;
  headers.via = append(headers.via, `1.1 ${VIA_PSEUDONYM}`);
  headers['x-request-id'] = requestId;
}
