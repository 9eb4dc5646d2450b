import { Agent, type IncomingHttpHeaders, request, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { Readable } from 'node:stream';

export interface HttpResult {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly body: Buffer;
  /** The body parsed as JSON (throws when it is not). */
  json<T = Record<string, unknown>>(): T;
}

export interface HttpOptions {
  method?: string;
  headers?: Record<string, string | string[]>;
  body?: string | Buffer | Readable;
  agent?: Agent | false;
  signal?: AbortSignal;
  /** The source address, e.g. 127.0.0.2: on Linux all of 127.0.0.0/8 is loopback, so tests can be distinct clients. */
  localAddress?: string;
  /** PEM of the CA that signed an `https://` server's certificate. */
  ca?: string;
}

/**
 * One HTTP/1.1 exchange with node:http, which (unlike fetch) sends Connection, Host, Expect
 * and friends as written; over TLS for an `https://` URL, offering no ALPN, so HTTP/1.1.
 * Resolves with the whole body.
 */
export function httpRequest(url: string, options: HttpOptions = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const body = options.body;
    const headers = { ...options.headers };
    // Node frames a DELETE or OPTIONS body only when told its length.
    if ((typeof body === 'string' || Buffer.isBuffer(body)) && !('content-length' in headers)) {
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const common: RequestOptions = {
      method: options.method ?? 'GET',
      headers,
      agent: options.agent ?? false,
      signal: options.signal,
      localAddress: options.localAddress,
    };
    const req = url.startsWith('https:')
      ? httpsRequest(url, { ...common, ca: options.ca })
      : request(url, common);
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body,
          json: <T>() => JSON.parse(body.toString()) as T,
        });
      });
    });
    if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) req.end(body);
    else body.pipe(req);
  });
}

/**
 * Writes raw bytes to a server and collects what comes back until it closes the connection
 * or `idleMs` passes without data. For framing and smuggling cases no client library sends.
 */
export function rawExchange(
  port: number,
  payload: string | Buffer,
  idleMs = 1000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.setTimeout(idleMs, () => socket.end());
    socket.on('data', (chunk) => (text += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
    socket.write(payload);
  });
}
