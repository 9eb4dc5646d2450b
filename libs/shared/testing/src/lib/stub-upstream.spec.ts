import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as http from 'node:http';
import WebSocket from 'ws';
import { patternSha256 } from './download-pattern';
import { type RecordedRequest, startStubUpstream, type StubUpstream } from './stub-upstream';

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

/** One request over `http`, so the target goes out byte for byte and the body is buffered. */
function send(
  stub: StubUpstream,
  path: string,
  options: http.RequestOptions & { body?: Buffer } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: stub.port, path, ...options }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: Buffer.concat(chunks),
        }),
      );
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

describe('startStubUpstream', () => {
  let stub: StubUpstream;

  beforeEach(async () => {
    stub = await startStubUpstream({ name: 'auth' });
  });

  afterEach(() => stub.close());

  it('listens on a free port of 127.0.0.1 and reports its url', () => {
    expect(stub.name).toBe('auth');
    expect(stub.port).toBeGreaterThan(0);
    expect(stub.url).toBe(`http://127.0.0.1:${stub.port}`);
  });

  it('answers GET /health with its name', async () => {
    const res = await fetch(`${stub.url}/health`);

    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.json()).toEqual({ status: 'ok', service: 'auth' });
  });

  it('echoes the raw target, headers and a streamed 1 MiB body with its sha256', async () => {
    const body = randomBytes(1024 * 1024);
    const target = '/api/auth//a/%7e/b;c?x=%2F&y&x=2';

    const res = await send(stub, target, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'x-test': 'one' },
      body,
    });

    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toEqual({
      service: 'auth',
      method: 'POST',
      url: target,
      path: '/api/auth//a/%7e/b;c',
      query: 'x=%2F&y&x=2',
      headers: {
        host: `127.0.0.1:${stub.port}`,
        connection: 'keep-alive',
        'content-type': 'application/octet-stream',
        'content-length': String(body.length),
        'x-test': 'one',
      },
      bodySize: body.length,
      sha256: sha256(body),
      trailers: {},
    });
    expect(stub.requests).toEqual([
      {
        method: 'POST',
        url: target,
        headers: expect.objectContaining({ 'x-test': 'one' }),
        rawHeaders: expect.arrayContaining(['x-test', 'one']),
        bodySize: body.length,
        sha256: sha256(body),
        remotePort: expect.any(Number),
        aborted: false,
        trailers: {},
      },
    ]);
  });

  it('echoes request trailers of a chunked body', async () => {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request(`${stub.url}/echo`, {
        method: 'PUT',
        headers: { 'transfer-encoding': 'chunked', trailer: 'x-checksum' },
      });
      req.on('response', resolve);
      req.on('error', reject);
      req.write('hello ');
      req.addTrailers({ 'x-checksum': 'abc' });
      req.end('world');
    });
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const echoed = JSON.parse(Buffer.concat(chunks).toString());

    expect(echoed).toMatchObject({
      bodySize: 11,
      sha256: sha256(Buffer.from('hello world')),
      trailers: { 'x-checksum': 'abc' },
    });
    expect(stub.requests[0].trailers).toEqual({ 'x-checksum': 'abc' });
  });

  it('adds the response headers the query names, repeated ones as several lines', async () => {
    const res = await send(
      stub,
      '/status?code=201&header=connection:x-secret&header=x-secret:1&header=set-cookie:a=1&header=set-cookie:b=2&header=content-type:text/plain',
    );

    expect(res.status).toBe(201);
    expect(res.headers).toMatchObject({
      connection: 'x-secret',
      'x-secret': '1',
      'set-cookie': ['a=1', 'b=2'],
      'content-type': 'text/plain',
    });
    expect(res.body.toString()).toBe('{"status":201}');
  });

  it('answers an unusable query with 400 and names the parameter', async () => {
    const badHeader = await send(stub, '/x?header=bad%20name:1');
    const badCount = await send(stub, '/api/sse?count=-1');

    expect(badHeader.status).toBe(400);
    expect(JSON.parse(badHeader.body.toString()).error).toMatch(/^query header=bad name:1: /);
    expect(badCount.status).toBe(400);
    expect(JSON.parse(badCount.body.toString())).toEqual({
      error: `query count=-1 must be an integer from 0 to ${Number.MAX_SAFE_INTEGER}`,
    });
  });

  it('streams server-sent events under any prefix, each as soon as it is due', async () => {
    const arrivals: { at: number; text: string }[] = [];
    const started = Date.now();

    const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http.get(`${stub.url}/api/auth/x/sse?count=3&intervalMs=150`, resolve).on('error', reject),
    );
    for await (const chunk of res) {
      arrivals.push({ at: Date.now() - started, text: (chunk as Buffer).toString() });
    }

    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream');
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(arrivals.map((a) => a.text)).toEqual([
      'id: 0\ndata: {"i":0,"service":"auth"}\n\n',
      'id: 1\ndata: {"i":1,"service":"auth"}\n\n',
      'id: 2\ndata: {"i":2,"service":"auth"}\n\n',
    ]);
    expect(arrivals[1].at - arrivals[0].at).toBeGreaterThanOrEqual(140);
    expect(arrivals[2].at - arrivals[1].at).toBeGreaterThanOrEqual(140);
  });

  it('stops the event stream when the client goes away', async () => {
    const aborted = once(stub.events, 'aborted') as Promise<[RecordedRequest]>;
    const req = http.get(`${stub.url}/sse?count=100&intervalMs=20`, (res) => {
      res.once('data', () => req.destroy());
    });
    req.on('error', () => undefined);

    const [request] = await aborted;

    expect(request).toMatchObject({ url: '/sse?count=100&intervalMs=20', aborted: true });
  });

  it('streams a download of the pattern with content-length', async () => {
    const bytes = 3 * 1024 * 1024 + 7;

    const res = await fetch(`${stub.url}/files/download?bytes=${bytes}`);
    const body = Buffer.from(await res.arrayBuffer());

    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-length')).toBe(String(bytes));
    expect(body.length).toBe(bytes);
    expect(sha256(body)).toBe(patternSha256(bytes));
  });

  it('streams a chunked download of 1 MiB by default', async () => {
    const res = await send(stub, '/download?chunked=1');

    expect(res.headers['content-length']).toBeUndefined();
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect(res.body.length).toBe(1024 * 1024);
    expect(sha256(res.body)).toBe(patternSha256(1024 * 1024));
  });

  it('computes the pattern digest of byte i = i % 251 across chunk boundaries', () => {
    const bytes = 200_000;
    const pattern = Buffer.from(Array.from({ length: bytes }, (_, i) => i % 251));

    expect(patternSha256(bytes)).toBe(sha256(pattern));
    expect(patternSha256(0)).toBe(sha256(Buffer.alloc(0)));
  });

  it('answers /status with the code and its JSON, and no body for 204', async () => {
    const teapot = await send(stub, '/api/status?code=418');
    const noContent = await send(stub, '/api/status?code=204');

    expect(teapot.status).toBe(418);
    expect(teapot.body.toString()).toBe('{"status":418}');
    expect(noContent.status).toBe(204);
    expect(noContent.body.length).toBe(0);
  });

  it('delays the echo by the requested time', async () => {
    const started = Date.now();

    const res = await send(stub, '/api/delay?ms=200');

    expect(Date.now() - started).toBeGreaterThanOrEqual(195);
    expect(JSON.parse(res.body.toString())).toMatchObject({ path: '/api/delay', query: 'ms=200' });
  });

  it('resets the connection before any response byte', async () => {
    await expect(send(stub, '/api/reset')).rejects.toMatchObject({ code: 'ECONNRESET' });

    const request = await stub.waitFor((r) => r.url === '/api/reset');
    expect(request.aborted).toBe(false);
  });

  it('resets the connection after the headers and 1000 of the 100000 bytes announced', async () => {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http.get(`${stub.url}/reset-after-headers`, resolve).on('error', reject),
    );
    let received = 0;
    res.on('data', (chunk: Buffer) => (received += chunk.length));
    const [error] = (await once(res, 'error')) as [NodeJS.ErrnoException];

    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe('100000');
    expect(received).toBe(1000);
    expect(error.code).toBe('ECONNRESET');
  });

  it('reports a hanging request the client gave up on as aborted', async () => {
    const aborted = once(stub.events, 'aborted') as Promise<[RecordedRequest]>;
    const req = http.get(`${stub.url}/api/hang`);
    req.on('error', () => undefined);
    await stub.waitFor((r) => r.url === '/api/hang');

    req.destroy();
    const [request] = await aborted;

    expect(request).toBe(stub.requests[0]);
    expect(request.aborted).toBe(true);
  });

  it('closes promptly with a hanging request and a WebSocket still open', async () => {
    const hanging = send(stub, '/hang');
    const ws = new WebSocket(`ws://127.0.0.1:${stub.port}/ws`);
    await once(ws, 'open');
    await stub.waitFor((r) => r.url === '/hang');

    await stub.close();

    await expect(hanging).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(ws.readyState).not.toBe(WebSocket.OPEN);
    expect(stub.requests[0].aborted).toBe(false);
  });

  it('keeps connections alive and tells which socket carried each request', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      await send(stub, '/a', { agent });
      await send(stub, '/b', { agent });
    } finally {
      agent.destroy();
    }

    expect(stub.server.keepAliveTimeout).toBe(65_000);
    expect(stub.connections).toBe(1);
    expect(stub.requests.map((r) => r.url)).toEqual(['/a', '/b']);
    expect(stub.requests[1].remotePort).toBe(stub.requests[0].remotePort);
  });

  it('emits each recorded request', async () => {
    const emitted = once(stub.events, 'request') as Promise<[RecordedRequest]>;

    await send(stub, '/emitted');

    const [request] = await emitted;
    expect(request).toBe(stub.requests[0]);
  });

  describe('waitFor', () => {
    it('resolves with a request recorded before it was called', async () => {
      await send(stub, '/past');

      await expect(stub.waitFor((r) => r.url === '/past')).resolves.toBe(stub.requests[0]);
    });

    it('resolves with the first matching request recorded later', async () => {
      const waiting = stub.waitFor((r) => r.url === '/future');

      await send(stub, '/other');
      await send(stub, '/future');

      await expect(waiting).resolves.toMatchObject({ url: '/future' });
    });

    it('rejects after the timeout when no request matches', async () => {
      jest.useFakeTimers();
      try {
        const waiting = stub.waitFor(() => false, 1000);
        jest.advanceTimersByTime(1000);

        await expect(waiting).rejects.toThrow('stub auth saw no matching request within 1000 ms');
      } finally {
        jest.useRealTimers();
      }
    });

    it('rejects when the stub closes first', async () => {
      const waiting = stub.waitFor(() => false);

      await stub.close();

      await expect(waiting).rejects.toThrow('stub auth closed before a matching request arrived');
    });
  });

  it('accepts a WebSocket upgrade on any path and echoes text as text and binary as binary', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${stub.port}/api/kira/socket?room=1`);
    await once(ws, 'open');
    const messages: { data: Buffer; isBinary: boolean }[] = [];
    ws.on('message', (data: Buffer, isBinary) => messages.push({ data, isBinary }));

    ws.send('hello');
    ws.send(Buffer.from([0, 1, 2, 255]));
    await new Promise<void>((resolve) =>
      ws.on('message', () => messages.length === 2 && resolve()),
    );
    ws.close();

    expect(messages).toEqual([
      { data: Buffer.from('hello'), isBinary: false },
      { data: Buffer.from([0, 1, 2, 255]), isBinary: true },
    ]);
    expect(stub.upgrades).toEqual([
      {
        url: '/api/kira/socket?room=1',
        headers: expect.objectContaining({ upgrade: 'websocket' }),
      },
    ]);
    expect(stub.requests).toEqual([]);
  });
});
