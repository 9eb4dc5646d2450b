/**
 * Pure mappings from what the gateway knows of a request to OpenTelemetry's HTTP semantic
 * conventions (opentelemetry.io, "Semantic conventions for HTTP spans", stable).
 */

/** The methods HTTP defines (RFC 9110 §9, RFC 5789): any other is `_OTHER`, as semconv says. */
const KNOWN_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
]);

/** `http.request.method`: the method, or `_OTHER` so a client cannot grow its cardinality. */
export function spanMethod(method: string | undefined): string {
  return method !== undefined && KNOWN_METHODS.has(method) ? method : '_OTHER';
}

/** A SERVER span's name, `<METHOD> <route prefix>`; `HTTP <route>` for an unknown method. */
export function serverSpanName(method: string, route: string): string {
  return `${method === '_OTHER' ? 'HTTP' : method} ${route}`;
}

/** A CLIENT span's name, `<METHOD>`; `HTTP` for an unknown method. */
export function clientSpanName(method: string): string {
  return method === '_OTHER' ? 'HTTP' : method;
}

/** `network.protocol.version` from Node's `httpVersion`: `1.1`, `1.0`, and `2` for `2.0`. */
export function protocolVersion(httpVersion: string): string {
  return httpVersion === '2.0' ? '2' : httpVersion;
}

/**
 * `server.address` and `server.port` of an upstream: the host name its Host header carries
 * (for a discovered instance, the name that resolved to its address) and the port it is
 * reached on, the scheme's default when its URL names none.
 */
export function upstreamAddress(host: string, url: URL): { address: string; port: number } {
  const bracket = host.startsWith('[') ? host.indexOf(']') : -1;
  let address: string;
  if (bracket !== -1) address = host.slice(1, bracket);
  else {
    const colon = host.lastIndexOf(':');
    address = colon === -1 ? host : host.slice(0, colon);
  }
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  return { address, port };
}
