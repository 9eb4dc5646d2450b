import { once } from 'node:events';
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  type IncomingHttpHeaders,
  type IncomingHttpStatusHeader,
  type OutgoingHttpHeaders,
  type SecureClientSessionOptions,
} from 'node:http2';
import { Readable } from 'node:stream';

export interface Http2Result {
  readonly status: number;
  readonly headers: IncomingHttpHeaders & IncomingHttpStatusHeader;
  readonly body: Buffer;
  /** The body parsed as JSON (throws when it is not). */
  json<T = Record<string, unknown>>(): T;
}

export interface Http2RequestOptions {
  method?: string;
  /** Regular fields, and pseudo-headers (`:authority`) to override Node's. */
  headers?: OutgoingHttpHeaders;
  body?: string | Buffer | Readable;
}

/**
 * Opens an HTTP/2 session over TLS (ALPN `h2`) to `url`, trusting only `ca`, and resolves once
 * the handshake is done and the server's SETTINGS have arrived: before them, `remoteSettings`
 * holds nghttp2's assumptions, not what the server said. Later session errors surface through
 * the streams made on it.
 */
export function openSession(
  url: string,
  ca: string,
  options: SecureClientSessionOptions = {},
): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(url, { ca, ...options });
    session.on('error', () => undefined);
    const onClose = () => reject(new Error(`HTTP/2 session to ${url} closed before it was ready`));
    session.once('close', onClose);
    Promise.all([once(session, 'connect'), once(session, 'remoteSettings')]).then(() => {
      session.off('close', onClose);
      resolve(session);
    }, reject);
  });
}

/** Sends one request on `session` and returns its stream, for a caller that watches or resets it. */
export function h2Stream(
  session: ClientHttp2Session,
  path: string,
  options: Http2RequestOptions = {},
): ClientHttp2Stream {
  const { body } = options;
  const stream = session.request(
    { ':method': options.method ?? 'GET', ':path': path, ...options.headers },
    { endStream: body === undefined },
  );
  if (body instanceof Readable) body.pipe(stream);
  else if (body !== undefined) stream.end(body);
  return stream;
}

/** Collects the response of `stream`: rejects when it is reset before its end. */
export function h2Response(stream: ClientHttp2Stream): Promise<Http2Result> {
  return new Promise((resolve, reject) => {
    let head: (IncomingHttpHeaders & IncomingHttpStatusHeader) | undefined;
    const chunks: Buffer[] = [];
    stream.on('response', (headers) => (head = headers));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', reject);
    stream.on('end', () => {
      if (!head) return reject(new Error('HTTP/2 stream ended without a response'));
      const body = Buffer.concat(chunks);
      resolve({
        status: Number(head[':status']),
        headers: head,
        body,
        json: <T>() => JSON.parse(body.toString()) as T,
      });
    });
    stream.on('close', () => reject(new Error(`HTTP/2 stream closed, code ${stream.rstCode}`)));
  });
}

/** One HTTP/2 exchange on `session`, resolved with the whole body. */
export function h2Request(
  session: ClientHttp2Session,
  path: string,
  options: Http2RequestOptions = {},
): Promise<Http2Result> {
  return h2Response(h2Stream(session, path, options));
}

/** Closes `session` and waits until its socket is gone. */
export async function closeSession(session: ClientHttp2Session): Promise<void> {
  if (session.closed || session.destroyed) return;
  await new Promise<void>((resolve) => session.close(() => resolve()));
}
