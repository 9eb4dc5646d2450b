import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { patternChunk } from './download-pattern';

/** One HTTP request as the stub received it. */
export interface RecordedRequest {
  method: string;
  /** The request target exactly as sent (`req.url`). */
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  /** Request body bytes received; fewer than sent when the exchange was cut short. */
  bodySize: number;
  /** Hex sha256 of the request body bytes received. */
  sha256: string;
  /** Client port of the TCP connection that carried the request. */
  remotePort: number;
  /** True once the client went away before the response finished. */
  aborted: boolean;
  trailers: Record<string, string>;
}

/** A running stub upstream; see {@link startStubUpstream} for what each path does. */
export interface StubUpstream {
  name: string;
  /** `http://host:port`, without a trailing slash. */
  url: string;
  port: number;
  server: http.Server;
  /** Every HTTP request, recorded when its body ended or its exchange closed. */
  requests: RecordedRequest[];
  /** Every WebSocket upgrade request. */
  upgrades: { url: string; headers: http.IncomingHttpHeaders }[];
  /** TCP connections accepted so far: fewer than requests proves keep-alive reuse. */
  connections: number;
  /**
   * Emits `'request'` with each {@link RecordedRequest} as it is recorded, and `'aborted'` with
   * it when the client went away before the response finished.
   */
  events: EventEmitter;
  /**
   * Resolves with the first recorded request, past or future, that matches; rejects after
   * `timeoutMs` (default 5000) or when the stub closes first.
   */
  waitFor(
    predicate: (request: RecordedRequest) => boolean,
    timeoutMs?: number,
  ): Promise<RecordedRequest>;
  /** Stops listening and destroys every open socket, WebSockets and hanging requests included. */
  close(): Promise<void>;
}

export interface StubUpstreamOptions {
  /** Reported as `service` in responses; default `'stub'`. */
  name?: string;
  /** Default `'127.0.0.1'`. */
  host?: string;
  /** Default 0: a free port chosen by the OS. */
  port?: number;
  /** How many requests and upgrades `requests`/`upgrades` keep, newest last; default 10,000. */
  historyLimit?: number;
}

const DEFAULT_WAIT_TIMEOUT_MS = 5000;
const DEFAULT_HISTORY_LIMIT = 10_000;
const DEFAULT_SSE_COUNT = 3;
const DEFAULT_SSE_INTERVAL_MS = 100;
const DEFAULT_DOWNLOAD_BYTES = 1024 * 1024;
const RESET_AFTER_HEADERS_LENGTH = 100_000;
const RESET_AFTER_HEADERS_SENT = 1000;
// Longer than the idle timeout of a gateway's upstream pool, so the pool, not the upstream,
// closes idle connections and a reused socket is never one the upstream is closing.
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/** A query parameter the stub cannot act on; answered with 400. */
class BadQueryError extends Error {
  override readonly name = 'BadQueryError';
}

interface Exchange {
  service: string;
  req: http.IncomingMessage;
  res: http.ServerResponse;
  record: RecordedRequest;
  path: string;
  rawQuery: string;
  query: URLSearchParams;
  extraHeaders: [string, string][];
  /** Set before the stub itself cuts the connection, so that is not taken for a client abort. */
  resetByStub: boolean;
}

function ignore(): void {
  // Errors on a socket whose peer went away are expected in a test upstream; 'close' follows.
}

function splitTarget(url: string): { path: string; rawQuery: string } {
  const mark = url.indexOf('?');
  return mark === -1
    ? { path: url, rawQuery: '' }
    : { path: url.slice(0, mark), rawQuery: url.slice(mark + 1) };
}

function readInt(
  query: URLSearchParams,
  key: string,
  fallback: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const raw = query.get(key);
  if (raw === null) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    throw new BadQueryError(`query ${key}=${raw} must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** Parses every `header=name:value` parameter, validated so a bad one is a 400, not a throw. */
function readExtraHeaders(query: URLSearchParams): [string, string][] {
  return query.getAll('header').map((param) => {
    const colon = param.indexOf(':');
    const name = param.slice(0, colon).trim();
    const value = param.slice(colon + 1).trim();
    try {
      if (colon === -1) throw new Error('expected name:value');
      http.validateHeaderName(name);
      http.validateHeaderValue(name, value);
    } catch (err) {
      throw new BadQueryError(`query header=${param}: ${(err as Error).message}`);
    }
    return [name, value];
  });
}

/** Writes the status line with the behaviour's headers, then the ones the query asked for. */
function writeHead(ex: Exchange, status: number, headers: Record<string, string> = {}): void {
  for (const [name, value] of Object.entries(headers)) ex.res.setHeader(name, value);
  const replaced = new Set<string>();
  for (const [name, value] of ex.extraHeaders) {
    const key = name.toLowerCase();
    if (replaced.has(key)) {
      ex.res.appendHeader(name, value);
    } else {
      ex.res.setHeader(name, value);
      replaced.add(key);
    }
  }
  ex.res.writeHead(status);
}

function sendJson(ex: Exchange, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  writeHead(ex, status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
  });
  ex.res.end(text);
}

/** Runs `action` once the request body ended, after the listener that records the request. */
function afterBody(ex: Exchange, action: () => void): void {
  ex.req.once('end', action);
}

function echo(ex: Exchange): void {
  const { req, record } = ex;
  sendJson(ex, 200, {
    service: ex.service,
    method: req.method,
    url: req.url,
    path: ex.path,
    query: ex.rawQuery,
    headers: req.headers,
    bodySize: record.bodySize,
    sha256: record.sha256,
    trailers: record.trailers,
  });
}

function streamEvents(ex: Exchange): void {
  const count = readInt(ex.query, 'count', DEFAULT_SSE_COUNT);
  const intervalMs = readInt(ex.query, 'intervalMs', DEFAULT_SSE_INTERVAL_MS);
  writeHead(ex, 200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let i = 0;
  let timer: NodeJS.Timeout | undefined;
  ex.res.on('close', () => clearTimeout(timer));
  const next = (): void => {
    ex.res.write(`id: ${i}\ndata: ${JSON.stringify({ i, service: ex.service })}\n\n`);
    i += 1;
    if (i < count) timer = setTimeout(next, intervalMs);
    else ex.res.end();
  };
  if (count === 0) ex.res.end();
  else next();
}

function streamDownload(ex: Exchange): void {
  const bytes = readInt(ex.query, 'bytes', DEFAULT_DOWNLOAD_BYTES);
  const chunked = ex.query.get('chunked') === '1';
  writeHead(ex, 200, {
    'content-type': 'application/octet-stream',
    ...(chunked ? {} : { 'content-length': String(bytes) }),
  });
  if (ex.req.method === 'HEAD') {
    ex.res.end();
    return;
  }
  let offset = 0;
  // Backpressure: stop at the first full buffer and resume on 'drain'. A client that goes away
  // never drains, so the loop simply stops with the response.
  const pump = (): void => {
    while (offset < bytes) {
      if (ex.res.destroyed) return;
      const chunk = patternChunk(offset, bytes - offset);
      offset += chunk.length;
      if (!ex.res.write(chunk)) {
        ex.res.once('drain', pump);
        return;
      }
    }
    ex.res.end();
  };
  pump();
}

function respondWithStatus(ex: Exchange): void {
  const code = readInt(ex.query, 'code', 200, 200, 599);
  if (code === 204 || code === 304) {
    writeHead(ex, code);
    ex.res.end();
  } else {
    sendJson(ex, code, { status: code });
  }
}

function delayEcho(ex: Exchange): void {
  const ms = readInt(ex.query, 'ms', 0);
  afterBody(ex, () => {
    const timer = setTimeout(() => echo(ex), ms);
    ex.res.on('close', () => clearTimeout(timer));
  });
}

function resetBeforeResponse(ex: Exchange): void {
  ex.resetByStub = true;
  ex.req.socket.destroy();
}

function resetAfterHeaders(ex: Exchange): void {
  writeHead(ex, 200, {
    'content-type': 'application/octet-stream',
    'content-length': String(RESET_AFTER_HEADERS_LENGTH),
  });
  ex.resetByStub = true;
  // Destroy only once the first chunk reached the kernel, or the client might see no body at all.
  ex.res.write(patternChunk(0, RESET_AFTER_HEADERS_SENT), () => ex.req.socket.destroy());
}

const BEHAVIOURS: Record<string, (ex: Exchange) => void> = {
  sse: streamEvents,
  download: streamDownload,
  status: respondWithStatus,
  delay: delayEcho,
  hang: () => undefined,
  reset: resetBeforeResponse,
  'reset-after-headers': resetAfterHeaders,
};

function chooseBehaviour(method: string, path: string): (ex: Exchange) => void {
  if (method === 'GET' && path === '/health') {
    return (ex) => sendJson(ex, 200, { status: 'ok', service: ex.service });
  }
  const lastSegment = path.slice(path.lastIndexOf('/') + 1);
  return Object.hasOwn(BEHAVIOURS, lastSegment)
    ? BEHAVIOURS[lastSegment]
    : (ex) => afterBody(ex, () => echo(ex));
}

/**
 * Starts a real HTTP and WebSocket server to stand behind a gateway in tests and demos. The
 * last segment of the request path picks the behaviour, so it works under any route prefix:
 *
 * - `GET /health`: 200 `{"status":"ok","service":name}`.
 * - `…/sse?count=3&intervalMs=100`: `count` events `id: i` / `data: {"i":i,"service":name}`,
 *   i from 0, the first at once and the rest `intervalMs` apart, then the end of the stream.
 * - `…/download?bytes=1048576&chunked=1`: `bytes` bytes of the pattern whose digest
 *   {@link patternSha256} gives, streamed with backpressure; `content-length` unless `chunked=1`.
 * - `…/status?code=200`: that status with `{"status":code}` (no body for 204 and 304).
 * - `…/delay?ms=0`: the echo, `ms` after the request body ended.
 * - `…/hang`: never answers.
 * - `…/reset`: destroys the socket before any response byte.
 * - `…/reset-after-headers`: 200 with `content-length: 100000`, 1000 bytes, then a destroyed socket.
 * - anything else: the echo, 200 JSON with service, method, url (raw), path, query (raw),
 *   headers, bodySize, sha256 and trailers of the request.
 *
 * Every HTTP request may add response headers with repeatable `header=name:value` parameters;
 * an unusable parameter is answered with 400 `{"error":…}`. A WebSocket upgrade on any path is
 * accepted and every message echoed back with its text or binary type.
 */
export async function startStubUpstream(options: StubUpstreamOptions = {}): Promise<StubUpstream> {
  const {
    name = 'stub',
    host = '127.0.0.1',
    port = 0,
    historyLimit = DEFAULT_HISTORY_LIMIT,
  } = options;
  const server = http.createServer();
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  const wss = new WebSocketServer({ noServer: true });
  const sockets = new Set<Socket>();
  const cancelWaits = new Set<() => void>();
  let closing = false;
  let closed: Promise<void> | undefined;

  const stub: StubUpstream = {
    name,
    url: '',
    port: 0,
    server,
    requests: [],
    upgrades: [],
    connections: 0,
    events: new EventEmitter(),
    waitFor(predicate, timeoutMs = DEFAULT_WAIT_TIMEOUT_MS) {
      const known = stub.requests.find(predicate);
      if (known) return Promise.resolve(known);
      return new Promise((resolve, reject) => {
        const settle = (): void => {
          clearTimeout(timer);
          stub.events.off('request', onRequest);
          cancelWaits.delete(cancel);
        };
        const onRequest = (request: RecordedRequest): void => {
          try {
            if (!predicate(request)) return;
            settle();
            resolve(request);
          } catch (err) {
            settle();
            reject(err);
          }
        };
        const cancel = (): void => {
          settle();
          reject(new Error(`stub ${name} closed before a matching request arrived`));
        };
        const timer = setTimeout(() => {
          settle();
          reject(new Error(`stub ${name} saw no matching request within ${timeoutMs} ms`));
        }, timeoutMs);
        stub.events.on('request', onRequest);
        cancelWaits.add(cancel);
      });
    },
    close() {
      closed ??= new Promise<void>((resolve, reject) => {
        closing = true;
        server.close((err) => (err ? reject(err) : resolve()));
        for (const socket of sockets) socket.destroy();
        for (const cancel of cancelWaits) cancel();
      });
      return closed;
    },
  };

  server.on('connection', (socket: Socket) => {
    stub.connections += 1;
    sockets.add(socket);
    socket.on('error', ignore);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('clientError', (_err, socket: Duplex) => socket.destroy());

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = req.url ?? '';
    const { path, rawQuery } = splitTarget(url);
    const hash = createHash('sha256');
    const ex: Exchange = {
      service: name,
      req,
      res,
      record: {
        method: req.method ?? '',
        url,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        bodySize: 0,
        sha256: '',
        remotePort: req.socket.remotePort ?? 0,
        aborted: false,
        trailers: {},
      },
      path,
      rawQuery,
      query: new URLSearchParams(rawQuery),
      extraHeaders: [],
      resetByStub: false,
    };
    let recorded = false;
    const record = (): void => {
      if (recorded) return;
      recorded = true;
      ex.record.sha256 = hash.digest('hex');
      // Node fills trailers with strings only; the Dict type merely allows missing keys.
      ex.record.trailers = { ...req.trailers } as Record<string, string>;
      stub.requests.push(ex.record);
      // A long-running demo or soak must not keep every request it ever saw.
      if (stub.requests.length > historyLimit)
        stub.requests.splice(0, stub.requests.length - historyLimit);
      stub.events.emit('request', ex.record);
    };
    req.on('data', (chunk: Buffer) => {
      ex.record.bodySize += chunk.length;
      hash.update(chunk);
    });
    req.on('end', record);
    req.on('close', record);
    req.on('error', ignore);
    res.on('error', ignore);
    res.on('close', () => {
      if (res.writableFinished || ex.resetByStub || closing) return;
      ex.record.aborted = true;
      record();
      stub.events.emit('aborted', ex.record);
    });

    try {
      ex.extraHeaders = readExtraHeaders(ex.query);
      chooseBehaviour(ex.record.method, path)(ex);
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      ex.extraHeaders = [];
      sendJson(ex, err instanceof BadQueryError ? 400 : 500, { error: (err as Error).message });
    }
  });

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', ignore);
    stub.upgrades.push({ url: req.url ?? '', headers: req.headers });
    if (stub.upgrades.length > historyLimit) stub.upgrades.shift();
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', ignore);
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  stub.port = (server.address() as AddressInfo).port;
  stub.url = `http://${host.includes(':') ? `[${host}]` : host}:${stub.port}`;
  return stub;
}
