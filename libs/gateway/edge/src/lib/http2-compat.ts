import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { type Http2ServerRequest, Http2ServerResponse } from 'node:http2';

/*
 * Over TLS the public port speaks HTTP/1.1 and HTTP/2 (CONTRACT.md "TLS and HTTP/2"). Node's
 * compatibility API hands the request listener an Http2ServerRequest and Http2ServerResponse
 * for an HTTP/2 stream, with the same fields and methods the pipeline uses on HTTP/1.1's
 * IncomingMessage and ServerResponse (headers, url, method, socket, setHeader, writeHead,
 * write, end, 'close'). So the pipeline is typed on the HTTP/1.1 classes and runs once for
 * both; these are the few places where the protocols differ.
 */

/** Whether the request arrived on an HTTP/2 stream. */
export function isHttp2(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 2;
}

/** Whether the response goes out on an HTTP/2 stream. */
export function isHttp2Response(res: object): boolean {
  return res instanceof Http2ServerResponse;
}

/** The stream an HTTP/2 request arrived on. */
export function streamOf(req: IncomingMessage): Http2ServerRequest['stream'] {
  return (req as unknown as Http2ServerRequest).stream;
}

/**
 * Whether a request has a body to forward. HTTP/1.1 announces one by its framing; an HTTP/2
 * stream has one unless its HEADERS frame ended the stream, and its length may be unknown.
 */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (req.headers['transfer-encoding'] !== undefined) return true;
  if (length !== undefined) return length !== '0';
  return isHttp2(req) && !streamOf(req).endAfterHeaders;
}

/**
 * Gives the request the header object it goes upstream with. An HTTP/2 compatibility request
 * has no `headers` setter, and reads `method` and `url` from its header object's `:method`
 * and `:path`, which the upstream's headers lack: its request line is pinned as plain fields
 * first, and the header object set as one too.
 */
export function setRequestHeaders(req: IncomingMessage, headers: IncomingHttpHeaders): void {
  if (!isHttp2(req)) {
    req.headers = headers;
    return;
  }
  const { method, url } = req;
  Object.defineProperty(req, 'method', { value: method, writable: true, enumerable: true });
  Object.defineProperty(req, 'url', { value: url, writable: true, enumerable: true });
  Object.defineProperty(req, 'headers', { value: headers, writable: true, enumerable: true });
}

/** The client connection's own `Connection` field for an answer, none over HTTP/2. */
export function clientConnection(res: ServerResponse): 'keep-alive' | 'close' | undefined {
  if (isHttp2Response(res)) return undefined;
  return res.shouldKeepAlive ? 'keep-alive' : 'close';
}

/**
 * Asks the client to open a new connection for its next request: `Connection: close` over
 * HTTP/1.1, a graceful GOAWAY over HTTP/2, which lets the streams already open finish.
 */
export function closeAfterResponse(req: IncomingMessage, res: ServerResponse): void {
  if (!isHttp2(req)) {
    res.shouldKeepAlive = false;
    return;
  }
  const session = streamOf(req).session;
  if (session && !session.closed) session.close();
}

/** Sets `Connection: close` on an HTTP/1.1 answer; HTTP/2 forbids the field. */
export function setConnectionClose(res: ServerResponse): void {
  if (!isHttp2Response(res)) res.setHeader('connection', 'close');
}
