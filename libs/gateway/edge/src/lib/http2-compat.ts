import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Http2ServerRequest, Http2ServerResponse, type ServerHttp2Stream } from 'node:http2';
import type { ReadableOptions } from 'node:stream';

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
 * The gateway's HTTP/2 request: Node's compatibility request (the server's `Http2ServerRequest`
 * option, there for extending it) with its method, target and header object as plain fields.
 * Node's own reads `method` and `url` from the stream's header object, `:method` and `:path`,
 * on every access, and has no `headers` setter, while the pipeline rewrites all three before it
 * forwards a request: the upstream's header object has no pseudo-headers left to read them from.
 * Pinning them per request (`Object.defineProperty`) cost about 1 µs a request (profiled).
 */
export class GatewayHttp2Request extends Http2ServerRequest {
  /** What `method`, `url` and `headers` read and write. */
  requestMethod: string;
  requestUrl: string;
  requestHeaders: IncomingHttpHeaders;

  constructor(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    options: ReadableOptions,
    rawHeaders: string[],
  ) {
    super(stream, headers, options, rawHeaders);
    this.requestMethod = headers[':method'] as string;
    this.requestUrl = headers[':path'] as string;
    this.requestHeaders = headers;
  }
}

// Accessors over the fields, in place of the base class's: TypeScript declares the base's as
// plain properties, which a subclass may not redeclare as accessors.
Object.defineProperties(GatewayHttp2Request.prototype, {
  method: {
    get(this: GatewayHttp2Request) {
      return this.requestMethod;
    },
    set(this: GatewayHttp2Request, method: string) {
      this.requestMethod = method;
    },
  },
  url: {
    get(this: GatewayHttp2Request) {
      return this.requestUrl;
    },
    set(this: GatewayHttp2Request, url: string) {
      this.requestUrl = url;
    },
  },
  headers: {
    get(this: GatewayHttp2Request) {
      return this.requestHeaders;
    },
    set(this: GatewayHttp2Request, headers: IncomingHttpHeaders) {
      this.requestHeaders = headers;
    },
  },
});

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
