import { request } from 'node:http';
import { createServer, type Server, type Socket, connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type GatewayProcess,
  httpRequest,
  rawExchange,
  startGateway,
  startStubUpstream,
  type StubUpstream,
} from '@helix/shared-testing';

/** An upstream that answers with raw bytes, to send what no HTTP library would. */
interface RawUpstream {
  server: Server;
  url: string;
  /** One entry per request head received: which connection carried it, and its path. */
  seen: { connection: number; path: string }[];
}

const RAW_REPLIES: Record<string, string> = {
  '/api/raw/ok': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/api/raw/two-content-lengths':
    'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!',
  '/api/raw/bad-status-line': 'HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok',
  '/api/raw/control-character': 'HTTP/1.1 200 OK\r\nX-Bad: a\x01b\r\nContent-Length: 2\r\n\r\nok',
  '/api/raw/204-with-body': 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello',
  '/api/raw/304-with-body': 'HTTP/1.1 304 Not Modified\r\n\r\nhello',
  '/api/raw/trailers':
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n',
};

async function startRawUpstream(): Promise<RawUpstream> {
  const seen: RawUpstream['seen'] = [];
  let connections = 0;
  const server = createServer((socket: Socket) => {
    const connection = ++connections;
    let buffer = '';
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      let end: number;
      while ((end = buffer.indexOf('\r\n\r\n')) !== -1) {
        const head = buffer.slice(0, end);
        buffer = buffer.slice(end + 4);
        const path = head.split(' ')[1];
        seen.push({ connection, path });
        socket.write(
          RAW_REPLIES[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n',
          'latin1',
        );
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

function statusOf(reply: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1] ?? 0);
}

describe('framing and smuggling (RFC 9112 §6)', () => {
  let stub: StubUpstream;
  let raw: RawUpstream;
  let gateway: GatewayProcess;

  beforeAll(async () => {
    [stub, raw] = await Promise.all([startStubUpstream({ name: 'auth' }), startRawUpstream()]);
    const file = join(mkdtempSync(join(tmpdir(), 'helix-framing-')), 'routes.yaml');
    writeFileSync(
      file,
      [
        'routes:',
        '  - { prefix: /api/auth, service: auth, targets: [' + stub.url + '] }',
        '  - { prefix: /api/raw, service: raw, targets: [' + raw.url + '] }',
      ].join('\n'),
    );
    gateway = await startGateway({ GATEWAY_ROUTES_FILE: file });
  });

  afterAll(async () => {
    await gateway?.stop();
    await stub?.close();
    raw?.server.close();
  });

  const reachedUpstream = (path: string) => stub.requests.some((r) => r.url.startsWith(path));

  it.each([
    [
      'Content-Length with Transfer-Encoding (attack: CL.TE smuggling)',
      'clte',
      'POST /api/auth/clte HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    [
      'two differing Content-Lengths (attack: CL.CL smuggling)',
      'clcl',
      'POST /api/auth/clcl HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
    ],
    [
      'a repeated Content-Length',
      'clrepeat',
      'POST /api/auth/clrepeat HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello',
    ],
    [
      'a malformed chunk size (attack: chunk-size smuggling)',
      'badchunk',
      'POST /api/auth/badchunk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
    ],
    [
      'a Transfer-Encoding that does not end in chunked (attack: TE.TE smuggling)',
      'tegzip',
      'POST /api/auth/tegzip HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhello',
    ],
    [
      'an obs-folded header (attack: header folding)',
      'fold',
      'GET /api/auth/fold HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n',
    ],
    [
      'bare LF line endings (attack: line-ending confusion)',
      'lf',
      'GET /api/auth/lf HTTP/1.1\nHost: x\n\n',
    ],
    [
      'a bare CR in a header (attack: line-ending confusion)',
      'cr',
      'GET /api/auth/cr HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n',
    ],
    [
      'a space before the colon (attack: header name confusion)',
      'space',
      'GET /api/auth/space HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
    ],
  ])(
    'answers %s with 400, closes the connection and forwards nothing',
    async (_name, path, payload) => {
      const reply = await rawExchange(gateway.port, payload);
      expect(statusOf(reply)).toBe(400);
      expect(reply).toContain('\r\nconnection: close\r\n');
      const body = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4));
      expect(body).toEqual({
        statusCode: 400,
        error: 'Bad Request',
        message: 'The request is malformed',
        requestId: expect.any(String),
      });
      await new Promise((r) => setTimeout(r, 100));
      expect(reachedUpstream(`/api/auth/${path}`)).toBe(false);
    },
  );

  it.each(['DELETE', 'OPTIONS'])(
    'never lets a chunked %s hide a second request in its body (attack: CVE-2026-29057 class, http-proxy#1721)',
    async (method) => {
      const hidden = `GET /api/auth/smuggled-${method} HTTP/1.1\r\nHost: x\r\n\r\n`;
      const payload =
        `${method} /api/auth/carrier-${method} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n` +
        `${hidden.length.toString(16)}\r\n${hidden}\r\n0\r\n\r\n`;
      const reply = await rawExchange(gateway.port, payload);
      expect(statusOf(reply)).toBe(200);
      const carrier = await stub.waitFor((r) => r.url === `/api/auth/carrier-${method}`);
      expect(carrier).toMatchObject({ method, bodySize: hidden.length });
      expect(carrier.headers['transfer-encoding']).toBe('chunked');
      expect(carrier.headers['content-length']).toBeUndefined();
      await new Promise((r) => setTimeout(r, 200));
      expect(reachedUpstream(`/api/auth/smuggled-${method}`)).toBe(false);
    },
  );

  it('sends the upstream one framing header, never both', async () => {
    await httpRequest(`${gateway.url}/api/auth/framed-length`, { method: 'POST', body: 'hello' });
    const byLength = await stub.waitFor((r) => r.url === '/api/auth/framed-length');
    expect([byLength.headers['content-length'], byLength.headers['transfer-encoding']]).toEqual([
      '5',
      undefined,
    ]);
    await rawExchange(
      gateway.port,
      'POST /api/auth/framed-chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    );
    const chunked = await stub.waitFor((r) => r.url === '/api/auth/framed-chunked');
    expect([chunked.headers['content-length'], chunked.headers['transfer-encoding']]).toEqual([
      undefined,
      'chunked',
    ]);
    expect(chunked.bodySize).toBe(5);
  });

  it('passes a chunked body and its trailers through intact, both ways', async () => {
    await rawExchange(
      gateway.port,
      'POST /api/auth/trailers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\nConnection: close\r\n\r\n' +
        '5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 5eb63bbbe01eeed093cb22bb8f5acdc3\r\n\r\n',
    );
    const sent = await stub.waitFor((r) => r.url === '/api/auth/trailers');
    expect(sent.bodySize).toBe(11);
    expect(sent.trailers).toEqual({ 'x-checksum': '5eb63bbbe01eeed093cb22bb8f5acdc3' });

    const received = await new Promise<{ body: string; trailers: NodeJS.Dict<string> }>(
      (resolve, reject) => {
        request(`${gateway.url}/api/raw/trailers`, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ body, trailers: res.trailers }));
          res.on('error', reject);
        }).end();
      },
    );
    expect(received).toEqual({ body: 'hello', trailers: { 'x-checksum': 'abc' } });
  });

  it.each(['two-content-lengths', 'bad-status-line', 'control-character'])(
    'answers an upstream that sends %s with a complete 502, and never reuses its socket (attack: response splitting)',
    async (name) => {
      const bad = await httpRequest(`${gateway.url}/api/raw/${name}`);
      expect(bad.status).toBe(502);
      expect(bad.json()).toEqual({
        statusCode: 502,
        error: 'Bad Gateway',
        message: 'The upstream service sent an invalid response',
        requestId: bad.headers['x-request-id'],
      });
      const badConnection = raw.seen.find((s) => s.path === `/api/raw/${name}`)?.connection;
      const ok = await httpRequest(`${gateway.url}/api/raw/ok`);
      expect([ok.status, ok.body.toString()]).toEqual([200, 'ok']);
      const next = raw.seen.filter((s) => s.path === '/api/raw/ok').at(-1)?.connection;
      expect(next).not.toBe(badConnection);
    },
  );

  it.each(['204-with-body', '304-with-body'])(
    'does not let a %s poison the connection for the next request',
    async (name) => {
      const first = await httpRequest(`${gateway.url}/api/raw/${name}`);
      expect(first.status).toBe(Number(name.slice(0, 3)));
      expect(first.body.length).toBe(0);
      for (let i = 0; i < 3; i++) {
        const next = await httpRequest(`${gateway.url}/api/raw/ok`);
        expect([next.status, next.body.toString()]).toEqual([200, 'ok']);
      }
    },
  );

  it('keeps the connection for well-framed pipelined requests and answers them in order', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(gateway.port, '127.0.0.1');
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk.toString();
        if ((text.match(/"url":/g) ?? []).length === 3) socket.end();
      });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
      socket.write(
        ['p1', 'p2', 'p3'].map((p) => `GET /api/auth/${p} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''),
      );
    });
    expect([...reply.matchAll(/"url":"([^"]+)"/g)].map((m) => m[1])).toEqual([
      '/api/auth/p1',
      '/api/auth/p2',
      '/api/auth/p3',
    ]);
  });

  it('answers Expect: 100-continue with exactly one 100, and still applies the header policy', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(gateway.port, '127.0.0.1');
      let text = '';
      let sentBody = false;
      socket.on('data', (chunk) => {
        text += chunk.toString();
        if (!sentBody && text.includes('100 Continue\r\n\r\n')) {
          sentBody = true;
          socket.write('hello');
        }
      });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
      socket.write(
        'POST /api/auth/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n',
      );
    });
    expect(reply.match(/HTTP\/1\.1 100 Continue/g)).toHaveLength(1);
    expect(reply).toMatch(/HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
    const echo = JSON.parse(reply.slice(reply.lastIndexOf('\r\n\r\n') + 4));
    expect(echo).toMatchObject({ bodySize: 5, url: '/api/auth/expect' });
    expect(echo.headers).toMatchObject({
      via: '1.1 helix-gateway',
      'x-forwarded-for': '127.0.0.1',
    });
    expect(echo.headers.expect).toBeUndefined();
  });
});
