import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type ClientHttp2Session, constants } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { setTimeout as sleep, setImmediate as tick } from 'node:timers/promises';
import { createServer as createTlsServer } from 'node:tls';
import { promisify } from 'node:util';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import {
  httpRequest,
  patternSha256,
  rawExchange,
  startGateway,
  type StubUpstream,
} from '@helix/shared-testing';
import WebSocket from 'ws';
import {
  closeSession,
  h2Request,
  h2Response,
  h2Stream,
  type Http2Result,
  openSession,
} from './http2-client';
import { describeWith } from './real-deps';
import { closedPort, UUID, usePlatform, useStub, useStubbedGateway, within } from './support';
import { handshake, tlsEnv, useTestCertificates } from './tls';

const CURL = '/usr/bin/curl';
const MiB = 1024 * 1024;
const PAD = 'a'.repeat(3000);

// Fields that describe one HTTP/1.1 connection: RFC 9113 §8.2.2 forbids them in HTTP/2, and a
// gateway that passed one on would have Node throw ERR_HTTP2_INVALID_CONNECTION_HEADERS.
const CONNECTION_SPECIFIC = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
];

const run = promisify(execFile);

interface Echo {
  service: string;
  method: string;
  url: string;
  path: string;
  headers: Record<string, string>;
  bodySize: number;
  sha256: string;
}

function expectJsonError(res: Http2Result, statusCode: number, error: string, message: string) {
  expect(res.status).toBe(statusCode);
  expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
  expect(res.json()).toEqual({
    statusCode,
    error,
    message,
    requestId: res.headers['x-request-id'],
  });
}

/** Resolves once the stub saw the client of `url` go away before its response finished. */
function upstreamAbort(stub: StubUpstream, url: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stub.events.off('aborted', onAborted);
      reject(new Error(`the upstream request ${url} was not aborted within ${timeoutMs} ms`));
    }, timeoutMs);
    const onAborted = (record: { url: string }) => {
      if (record.url !== url) return;
      clearTimeout(timer);
      stub.events.off('aborted', onAborted);
      resolve(Date.now());
    };
    stub.events.on('aborted', onAborted);
  });
}

/** Writes raw bytes on a TLS connection that offered only http/1.1, and collects the reply. */
async function tlsExchange(
  port: number,
  ca: string,
  payload: string,
): Promise<{ alpnProtocol: string | false | null; reply: string }> {
  const socket = await handshake(port, ca, { ALPNProtocols: ['http/1.1'] });
  let text = '';
  socket.setTimeout(1000, () => socket.end());
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  socket.write(payload);
  await once(socket, 'close');
  return { alpnProtocol: socket.alpnProtocol, reply: text };
}

describe('TLS and HTTP/2 on the public port', () => {
  const pki = useTestCertificates();
  const ca = () => pki.certs.ca.pem;
  const tls = () => ({ tls: { ca: ca() } });

  describe('one TLS gateway in front of the seven services', () => {
    let session: ClientHttp2Session | undefined;
    // Closed before the gateway stops, so that its drain has no session to wait for.
    afterAll(async () => session && (await closeSession(session)));
    const platform = usePlatform(
      async () => ({
        ...tlsEnv(pki.certs.leaf),
        CLEVERSCREEN_SERVICE_URL: `http://127.0.0.1:${await closedPort()}`,
        PROXY_TIMEOUT_MS: '1500',
        // One check at boot: the dead service stays short of the unhealthy threshold, so a
        // request still tries it (502 refused) instead of being answered 503 at once.
        HEALTH_CHECK_INTERVAL_MS: '60000',
      }),
      tls,
    );
    beforeAll(async () => {
      session = await openSession(platform.gateway.url, ca());
    });
    const h2 = (path: string, options?: Parameters<typeof h2Request>[2]) =>
      h2Request(session as ClientHttp2Session, path, options);

    describe('negotiation', () => {
      it('speaks h2 and http/1.1 on one port, chosen by ALPN, and HTTP/1.1 to a client that offers none', async () => {
        const { port } = platform.gateway;
        for (const [offered, chosen] of [
          [['h2', 'http/1.1'], 'h2'],
          [['h2'], 'h2'],
          [['http/1.1'], 'http/1.1'],
        ] as const) {
          const socket = await handshake(port, ca(), { ALPNProtocols: [...offered] });
          expect({ offered, chosen: socket.alpnProtocol }).toEqual({ offered, chosen });
          socket.destroy();
        }

        expect(session?.alpnProtocol).toBe('h2');
        const overH2 = await h2('/heartbeat');
        expect({ status: overH2.status, body: overH2.json() }).toEqual({
          status: 200,
          body: { status: 'ok' },
        });

        const overHttp1 = await tlsExchange(
          port,
          ca(),
          'GET /heartbeat HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n',
        );
        expect(overHttp1.alpnProtocol).toBe('http/1.1');
        expect(overHttp1.reply).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n\{"status":"ok"\}$/);

        // node:https offers no ALPN at all.
        const noAlpn = await httpRequest(`${platform.gateway.url}/heartbeat`, { ca: ca() });
        expect(noAlpn.status).toBe(200);
        expect(noAlpn.json()).toEqual({ status: 'ok' });
      });

      it('presents the whole chain, so a client that trusts only the root verifies it', async () => {
        const socket = await handshake(platform.gateway.port, ca());
        expect(socket.authorized).toBe(true);
        const peer = socket.getPeerCertificate(true);
        expect(peer.fingerprint256).toBe(pki.certs.leaf.fingerprint256);
        expect(peer.issuerCertificate.subject.CN).toBe('Helix e2e intermediate CA');
        socket.destroy();
      });

      it('speaks TLS 1.2 and 1.3 and refuses TLS 1.1 (protocol downgrade)', async () => {
        const { port } = platform.gateway;
        for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
          const socket = await handshake(port, ca(), { minVersion: version, maxVersion: version });
          expect(socket.getProtocol()).toBe(version);
          socket.destroy();
        }
        // OpenSSL 3 refuses TLS 1.1 at its default security level on both ends; the client
        // lowers its own, and a server that still allows 1.1 shows that this client speaks it.
        const old = {
          minVersion: 'TLSv1',
          maxVersion: 'TLSv1.1',
          ciphers: 'DEFAULT@SECLEVEL=0',
        } as const;
        const lenient = createTlsServer({
          cert: pki.certs.leaf.chainPem,
          key: pki.certs.leaf.keyPem,
          ...old,
        });
        lenient.on('tlsClientError', () => undefined);
        await new Promise<void>((resolve) => lenient.listen(0, '127.0.0.1', resolve));
        try {
          const control = await handshake((lenient.address() as AddressInfo).port, ca(), old);
          expect(control.getProtocol()).toBe('TLSv1.1');
          control.destroy();
        } finally {
          lenient.close();
        }
        await expect(handshake(port, ca(), old)).rejects.toThrow();
      });

      it('speaks no cleartext HTTP on its TLS port', async () => {
        const reply = await rawExchange(
          platform.gateway.port,
          'GET /heartbeat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
        );
        expect(reply).not.toMatch(/^HTTP\/1\.[01] [23]\d\d/);
        expect(reply).not.toContain('"status":"ok"');
      });

      it('advertises SETTINGS_MAX_CONCURRENT_STREAMS 100 by default', () => {
        expect(session?.remoteSettings.maxConcurrentStreams).toBe(100);
      });
    });

    describeWith(CURL, 'curl', () => {
      const curl = async (...args: string[]) =>
        (await run(CURL, ['-sS', '--cacert', pki.certs.ca.certFile, ...args])).stdout;

      it('is served over HTTP/2 to curl --http2, and over HTTP/1.1 to curl --http1.1', async () => {
        const h2Out = await curl(
          '--http2',
          '-H',
          'x-request-id: curl-h2',
          '-w',
          '\n%{http_version} %{http_code}',
          `${platform.gateway.url}/api/auth/curl?x=1`,
        );
        const [h2Body, h2Status] = h2Out.split('\n');
        expect(h2Status).toBe('2 200');
        expect(JSON.parse(h2Body)).toMatchObject({
          service: 'auth',
          url: '/api/auth/curl?x=1',
          headers: { 'x-forwarded-proto': 'https', 'x-request-id': 'curl-h2' },
        });

        const h1Out = await curl(
          '--http1.1',
          '-o',
          '/dev/null',
          '-w',
          '%{http_version} %{http_code}',
          `${platform.gateway.url}/heartbeat`,
        );
        expect(h1Out).toBe('1.1 200');
      });
    });

    describe('the gateway over HTTP/2', () => {
      it('answers /heartbeat, /health and /info, and a JSON 404 for a path no route takes', async () => {
        const heartbeat = await h2('/heartbeat');
        expect(heartbeat.status).toBe(200);
        expect(heartbeat.json()).toEqual({ status: 'ok' });
        expect(heartbeat.headers['x-request-id']).toMatch(UUID);

        const health = await h2('/health');
        expect(health.status).toBe(200);
        expect(health.json()).toMatchObject({
          status: expect.stringMatching(/^(ok|degraded)$/),
          uptime: expect.any(Number),
          services: expect.objectContaining({ auth: expect.any(String), vera: expect.any(String) }),
        });

        const info = await h2('/info');
        expect(info.status).toBe(200);
        const body = info.json<{ name: string; routes: unknown[] }>();
        expect(body.name).toBe('@helix/api-gateway');
        expect(body.routes).toContainEqual({ prefix: '/api/auth', service: 'auth' });
        expect(info.body.toString()).not.toMatch(/127\.0\.0\.1|http:/);

        expectJsonError(await h2('/nothing/here'), 404, 'Not Found', 'No route matches this path');
      });

      it('routes by prefix with the path and query byte for byte, resolving dot segments', async () => {
        const url = '/api/tenants/a/b%20c/~d?x=1&y=%2F&z=a+b&empty=&flag';
        const res = await h2(url);
        expect(res.status).toBe(200);
        expect(res.json()).toMatchObject({ service: 'tenant', method: 'GET', url });

        const dotted = await h2('/api/auth/../users/me?x=1');
        expect(dotted.status).toBe(200);
        expect(dotted.json()).toMatchObject({ service: 'admin', url: '/api/users/me?x=1' });
      });

      it.each(['/api/auth/%2e%2e/users/admin', '/api/auth/..%2fusers/admin', '/api%2fauth/x'])(
        'refuses the encoded traversal %s with a JSON 400 (path confusion)',
        async (path) => {
          expectJsonError(
            await h2(path),
            400,
            'Bad Request',
            'The request path is malformed or ambiguous',
          );
          expect(platform.stubs.admin.requests.some((r) => r.url.includes('admin'))).toBe(false);
        },
      );

      it('sends the upstream an HTTP/1.1 request: its own Host, :authority as X-Forwarded-Host, X-Forwarded-Proto https, no pseudo-header or connection-specific field', async () => {
        const res = await h2('/api/auth/who', {
          method: 'POST',
          body: 'hello',
          headers: {
            ':authority': 'public.example.com',
            'x-forwarded-proto': 'http',
            'x-forwarded-host': 'spoofed.example',
            te: 'trailers',
          },
        });
        expect(res.status).toBe(200);
        const echo = res.json<Echo>();
        expect(echo).toMatchObject({ method: 'POST', url: '/api/auth/who', bodySize: 5 });
        expect(echo.headers).toMatchObject({
          host: new URL(platform.stubs.auth.url).host,
          'x-forwarded-host': 'public.example.com',
          'x-forwarded-proto': 'https',
          'x-forwarded-for': '127.0.0.1',
          via: expect.stringMatching(/^(1\.1|2|2\.0) helix-gateway$/),
        });
        expect(echo.headers.te).toBeUndefined();
        const seen = await platform.stubs.auth.waitFor((r) => r.url === '/api/auth/who');
        const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
        expect(names.filter((n) => n.startsWith(':'))).toEqual([]);
        expect(names.filter((n) => n === 'host')).toEqual(['host']);
      });

      it('joins the cookie fields an HTTP/2 client splits into one Cookie for the upstream (RFC 9113 §8.2.3)', async () => {
        const res = await h2('/api/auth/cookies', { headers: { cookie: ['a=1', 'b=2'] } });
        expect(res.json<Echo>().headers.cookie).toBe('a=1; b=2');
        const seen = await platform.stubs.auth.waitFor((r) => r.url === '/api/auth/cookies');
        const cookies = seen.rawHeaders.filter(
          (field, i) => i % 2 === 0 && /^cookie$/i.test(field),
        );
        expect(cookies).toHaveLength(1);
      });

      it('echoes a sane X-Request-Id and gives any other request a new UUID, forwarded upstream', async () => {
        const kept = await h2('/api/auth/id', { headers: { 'x-request-id': 'client-id-h2' } });
        expect(kept.headers['x-request-id']).toBe('client-id-h2');
        expect(kept.json<Echo>().headers['x-request-id']).toBe('client-id-h2');

        const fresh = await h2('/api/auth/id', { headers: { 'x-request-id': 'bad id!' } });
        expect(fresh.headers['x-request-id']).toMatch(UUID);
        expect(fresh.json<Echo>().headers['x-request-id']).toBe(fresh.headers['x-request-id']);
      });

      it('adds Server-Timing: gw + upstream = total', async () => {
        const res = await h2('/api/auth/delay?ms=50');
        const parsed = Object.fromEntries(
          String(res.headers['server-timing'])
            .split(',')
            .map((part) => {
              const [name, dur] = part.trim().split(';dur=');
              return [name, Number(dur)];
            }),
        );
        expect(Object.keys(parsed)).toEqual(['gw', 'upstream', 'total']);
        expect(parsed.upstream).toBeGreaterThanOrEqual(45);
        expect(parsed.gw + parsed.upstream).toBeCloseTo(parsed.total, 2);
      });

      it('answers a CORS preflight itself with 204, never forwarded, and sets CORS on proxied answers', async () => {
        const preflight = await h2('/api/auth/cors', {
          method: 'OPTIONS',
          headers: {
            origin: 'https://app.example.com',
            'access-control-request-method': 'PATCH',
            'access-control-request-headers': 'content-type,x-custom',
          },
        });
        expect(preflight.status).toBe(204);
        expect(preflight.body.length).toBe(0);
        expect(preflight.headers).toMatchObject({
          'access-control-allow-origin': '*',
          'access-control-allow-methods': 'PATCH',
          'access-control-allow-headers': 'content-type,x-custom',
          'access-control-max-age': '600',
        });
        const actual = await h2(
          '/api/auth/cors?header=access-control-allow-origin:https://evil.example',
          {
            headers: { origin: 'https://app.example.com' },
          },
        );
        expect(actual.status).toBe(200);
        expect(actual.headers['access-control-allow-origin']).toBe('*');
        expect(actual.headers['access-control-expose-headers']).toContain('X-Request-Id');
        // Only the GET reached the upstream: the preflight was the gateway's to answer.
        const forwarded = platform.stubs.auth.requests.filter((r) =>
          r.url.startsWith('/api/auth/cors'),
        );
        expect(forwarded.map((r) => r.method)).toEqual(['GET']);
      });

      it('puts the Helmet headers, HSTS included, on gateway and proxied answers, and no X-Powered-By', async () => {
        for (const path of ['/heartbeat', '/nothing', '/api/auth/x?header=x-powered-by:Express']) {
          const res = await h2(path);
          expect(res.headers).toMatchObject({
            'strict-transport-security': 'max-age=31536000; includeSubDomains',
            'x-content-type-options': 'nosniff',
            'x-frame-options': 'SAMEORIGIN',
            'referrer-policy': 'no-referrer',
            'cross-origin-opener-policy': 'same-origin',
          });
          expect(res.headers['x-powered-by']).toBeUndefined();
        }
      });

      it.each([
        ['gzip', gunzipSync],
        ['br', brotliDecompressSync],
      ] as const)('compresses a JSON body of at least 1 KiB with %s', async (encoding, decode) => {
        const res = await h2('/api/auth/big', {
          headers: { 'accept-encoding': encoding, 'x-pad': PAD },
        });
        expect(res.status).toBe(200);
        expect(res.headers['content-encoding']).toBe(encoding);
        expect(res.headers.vary).toContain('Accept-Encoding');
        expect(JSON.parse(decode(res.body).toString()).headers['x-pad']).toBe(PAD);
      });

      it('keeps the connection-specific fields an upstream sends from the HTTP/2 client, and keeps serving', async () => {
        const res = await h2(
          '/api/auth/hop?header=connection:x-hop&header=x-hop:1&header=keep-alive:timeout%3D5' +
            '&header=proxy-connection:keep-alive&header=upgrade:websocket&header=x-kept:yes',
        );
        expect(res.status).toBe(200);
        expect(res.json()).toMatchObject({ url: expect.stringMatching(/^\/api\/auth\/hop\?/) });
        expect(res.headers['x-kept']).toBe('yes');
        for (const name of [...CONNECTION_SPECIFIC, 'x-hop'])
          expect(res.headers[name]).toBeUndefined();

        // The stub frames this one with Transfer-Encoding: chunked.
        const chunked = await h2('/api/auth/download?bytes=65536&chunked=1');
        expect(chunked.status).toBe(200);
        expect(chunked.headers['transfer-encoding']).toBeUndefined();
        expect(createHash('sha256').update(chunked.body).digest('hex')).toBe(patternSha256(65536));

        expect((await h2('/heartbeat')).status).toBe(200);
        expect(platform.gateway.child.exitCode).toBeNull();
      });

      it('answers JSON errors: 502 when the upstream refuses, 504 when it is too slow', async () => {
        expectJsonError(
          await h2('/api/cleverscreen/x'),
          502,
          'Bad Gateway',
          'The upstream service refused the connection',
        );
        expectJsonError(
          await h2('/api/users/hang'),
          504,
          'Gateway Timeout',
          'The upstream service did not respond in time',
        );
      });
    });

    describe('bodies and streams over HTTP/2', () => {
      it.each([
        ['announced by content-length', true],
        ['of unannounced length', false],
      ])('streams an 8 MiB upload %s byte for byte', async (_, announced) => {
        const body = randomBytes(8 * MiB);
        const res = await h2(`/api/files/upload-${announced ? 'announced' : 'unannounced'}`, {
          method: 'POST',
          headers: {
            'content-type': 'application/octet-stream',
            ...(announced ? { 'content-length': String(body.length) } : {}),
          },
          body: announced
            ? body
            : Readable.from([body.subarray(0, 4 * MiB), body.subarray(4 * MiB)]),
        });
        expect(res.status).toBe(200);
        expect(res.json()).toMatchObject({
          bodySize: body.length,
          sha256: createHash('sha256').update(body).digest('hex'),
        });
      });

      it('streams an 8 MiB download byte for byte', async () => {
        const bytes = 8 * MiB;
        const res = await h2(`/api/files/download?bytes=${bytes}`);
        expect(res.status).toBe(200);
        expect(res.body.length).toBe(bytes);
        expect(createHash('sha256').update(res.body).digest('hex')).toBe(patternSha256(bytes));
      });

      it('delivers server-sent events live: each one before the upstream writes the next', async () => {
        const stream = h2Stream(
          session as ClientHttp2Session,
          '/api/kira/sse?count=3&intervalMs=300',
          {
            headers: { 'accept-encoding': 'gzip, br' },
          },
        );
        const started = Date.now();
        const arrivals: number[] = [];
        let text = '';
        stream.on('data', (chunk: Buffer) => {
          text += chunk.toString();
          for (let i = 0; i < (chunk.toString().match(/\n\n/g) ?? []).length; i++)
            arrivals.push(Date.now() - started);
        });
        const res = await h2Response(stream);
        expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
        expect(res.headers['content-encoding']).toBeUndefined();
        expect(text).toBe(
          [0, 1, 2].map((i) => `id: ${i}\ndata: {"i":${i},"service":"kira"}\n\n`).join(''),
        );
        expect(arrivals).toHaveLength(3);
        expect(arrivals[1] - arrivals[0]).toBeGreaterThan(200);
        expect(arrivals[2] - arrivals[1]).toBeGreaterThan(200);
      });

      it('aborts the upstream request when the client resets its stream before the answer (RST_STREAM)', async () => {
        const url = '/api/tenants/hang?reset=before-response';
        const aborted = upstreamAbort(platform.stubs.tenant, url, 5000);
        const stream = h2Stream(session as ClientHttp2Session, url);
        stream.on('error', () => undefined);
        await platform.stubs.tenant.waitFor((r) => r.url === url);
        const resetAt = Date.now();
        stream.close(constants.NGHTTP2_CANCEL);
        // Well before PROXY_TIMEOUT_MS (1500 ms), when the gateway would give up by itself.
        expect((await aborted) - resetAt).toBeLessThan(1000);
      });

      it('aborts the upstream request when the client resets its stream mid-response', async () => {
        const url = '/api/kira/sse?count=50&intervalMs=100';
        const aborted = upstreamAbort(platform.stubs.kira, url, 5000);
        const stream = h2Stream(session as ClientHttp2Session, url);
        stream.on('error', () => undefined);
        await once(stream, 'data');
        const resetAt = Date.now();
        stream.close(constants.NGHTTP2_CANCEL);
        expect((await aborted) - resetAt).toBeLessThan(1000);
        expect((await h2('/heartbeat')).status).toBe(200);
      });
    });

    describe('HTTP/1.1 over TLS', () => {
      it('tells the upstream X-Forwarded-Proto https and the Host the client sent as X-Forwarded-Host', async () => {
        const res = await httpRequest(`${platform.gateway.url}/api/auth/over-https`, { ca: ca() });
        expect(res.status).toBe(200);
        expect(res.json<Echo>().headers).toMatchObject({
          host: new URL(platform.stubs.auth.url).host,
          'x-forwarded-proto': 'https',
          'x-forwarded-host': `127.0.0.1:${platform.gateway.port}`,
        });
      });

      it('proxies a WebSocket over wss://, text and binary', async () => {
        const ws = new WebSocket(
          `${platform.gateway.url.replace('https', 'wss')}/api/vera/socket?tls=1`,
          {
            ca: ca(),
          },
        );
        await new Promise((resolve, reject) => {
          ws.once('open', resolve);
          ws.once('error', reject);
          ws.once('unexpected-response', (_req, res) =>
            reject(new Error(`refused with ${res.statusCode}`)),
          );
        });
        const next = () =>
          new Promise<{ data: Buffer; isBinary: boolean }>((resolve) =>
            ws.once('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary })),
          );
        ws.send('hello over wss');
        expect(await next()).toEqual({ data: Buffer.from('hello over wss'), isBinary: false });
        ws.send(Buffer.from([0, 1, 255]));
        expect(await next()).toEqual({ data: Buffer.from([0, 1, 255]), isBinary: true });
        ws.close();
        const upgrade = platform.stubs.vera.upgrades.find(
          (u) => u.url === '/api/vera/socket?tls=1',
        );
        expect(upgrade?.headers).toMatchObject({
          upgrade: 'websocket',
          'x-forwarded-proto': 'https',
        });
      });

      it('refuses an h2c upgrade over TLS (h2c smuggling)', async () => {
        const { reply } = await tlsExchange(
          platform.gateway.port,
          ca(),
          'GET /api/vera/smuggle HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, HTTP2-Settings\r\n' +
            'Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n',
        );
        expect(reply).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
        expect(platform.stubs.vera.requests.some((r) => r.url === '/api/vera/smuggle')).toBe(false);
      });
    });
  });

  describe('header limits over HTTP/2', () => {
    const limited = useStubbedGateway(
      () => ({
        ...tlsEnv(pki.certs.leaf),
        MAX_HEADER_BYTES: '4096',
        MAX_HEADERS_COUNT: '20',
        HTTP2_MAX_CONCURRENT_STREAMS: '7',
      }),
      'auth',
      tls,
    );
    let session: ClientHttp2Session;
    beforeAll(async () => {
      session = await openSession(limited.gateway.url, ca());
    });
    afterAll(() => closeSession(session));

    it('advertises HTTP2_MAX_CONCURRENT_STREAMS as SETTINGS_MAX_CONCURRENT_STREAMS', () => {
      expect(session.remoteSettings.maxConcurrentStreams).toBe(7);
    });

    it('stops oversized request headers (header-overflow memory abuse) with the 431 JSON, nothing forwarded', async () => {
      const res = await h2Request(session, '/api/auth/oversized', {
        headers: { 'x-big': 'a'.repeat(6 * 1024) },
      });
      expect(res.status).toBe(431);
      expect(res.headers['x-request-id']).toMatch(UUID);
      expect(res.json()).toEqual({
        statusCode: 431,
        error: 'Request Header Fields Too Large',
        message: 'The request headers are too large',
        requestId: res.headers['x-request-id'],
      });
      await sleep(200);
      expect(limited.stub.requests.some((r) => r.url === '/api/auth/oversized')).toBe(false);
    });

    it('stops a flood of header fields (hash-table / CPU abuse) with the 431 JSON, nothing forwarded', async () => {
      const headers = Object.fromEntries(
        Array.from({ length: 40 }, (_, i) => [`x-field-${i}`, String(i)]),
      );
      const res = await h2Request(session, '/api/auth/many-fields', { headers });
      expect(res.status).toBe(431);
      expect(res.json()).toEqual({
        statusCode: 431,
        error: 'Request Header Fields Too Large',
        message: expect.stringMatching(
          /^The request (headers are too large|has too many header fields)$/,
        ),
        requestId: res.headers['x-request-id'],
      });
      await sleep(200);
      expect(limited.stub.requests.some((r) => r.url === '/api/auth/many-fields')).toBe(false);
    });

    it('passes a request within both limits', async () => {
      const headers = Object.fromEntries(
        Array.from({ length: 10 }, (_, i) => [`x-field-${i}`, 'v'.repeat(100)]),
      );
      const res = await h2Request(session, '/api/auth/within', { headers });
      expect(res.status).toBe(200);
      expect(res.json<Echo>().headers['x-field-9']).toBe('v'.repeat(100));
    });
  });

  describe('rate limiting over HTTP/2', () => {
    const limited = useStubbedGateway(
      () => ({ ...tlsEnv(pki.certs.leaf), RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' }),
      'tenant',
      tls,
    );

    it('answers 429 with Retry-After and the RateLimit fields past RATE_LIMIT_MAX, without touching the upstream', async () => {
      const session = await openSession(limited.gateway.url, ca());
      try {
        const results: Http2Result[] = [];
        for (let i = 0; i < 5; i++) results.push(await h2Request(session, '/api/tenants/limited'));
        expect(results.map((r) => r.status)).toEqual([200, 200, 200, 429, 429]);
        for (const r of results) expect(r.headers['ratelimit-limit']).toBe('3');
        const refused = results[3];
        expect(refused.headers['ratelimit-remaining']).toBe('0');
        expect(refused.headers['ratelimit-reset']).toMatch(/^\d+$/);
        expect(refused.headers['retry-after']).toMatch(/^\d+$/);
        expectJsonError(
          refused,
          429,
          'Too Many Requests',
          `Rate limit exceeded: retry in ${refused.headers['retry-after']} s`,
        );
        expect(limited.stub.requests.filter((r) => r.url === '/api/tenants/limited')).toHaveLength(
          3,
        );
        expect((await h2Request(session, '/heartbeat')).status).toBe(200);
      } finally {
        await closeSession(session);
      }
    });
  });

  describe('HTTP/2 rapid reset', () => {
    const target = useStubbedGateway(() => tlsEnv(pki.certs.leaf), 'auth', tls);

    it('closes with GOAWAY a connection that opens and resets up to 5,000 streams in a burst (CVE-2023-44487 rapid reset), while another connection is served', async () => {
      const bystander = await openSession(target.gateway.url, ca());
      const attacker = await openSession(target.gateway.url, ca());
      try {
        expect((await h2Request(bystander, '/api/auth/bystander-before')).status).toBe(200);
        let goaway = false;
        attacker.on('goaway', () => (goaway = true));
        // A GOAWAY with an error code also fails the session with ERR_HTTP2_SESSION_ERROR.
        attacker.on('error', () => undefined);
        // Not events.once, which rejects on the session's 'error' that a GOAWAY with an error code brings.
        const attackerClosed = new Promise<void>((resolve) =>
          attacker.once('close', () => resolve()),
        );
        // The other connection keeps asking, one request after another, while the attack runs.
        const during = (async () => {
          const statuses: number[] = [];
          for (let i = 0; i < 20; i++)
            statuses.push((await h2Request(bystander, `/api/auth/bystander-${i}`)).status);
          return statuses;
        })();
        // As the attack goes: waves that stay within SETTINGS_MAX_CONCURRENT_STREAMS, each
        // stream reset once its HEADERS are out. Past the limit, Node's client would hold the
        // streams back and cancel them unsent, and the server would see no burst at all.
        let opened = 0;
        while (opened < 5000 && !attacker.destroyed && !goaway) {
          const wave = [];
          for (let i = 0; i < 100 && opened < 5000; i++, opened++) {
            const stream = attacker.request({ ':path': `/api/auth/rapid-reset?i=${opened}` });
            stream.on('error', () => undefined);
            wave.push(stream);
          }
          await tick();
          for (const stream of wave) stream.close(constants.NGHTTP2_CANCEL);
          await tick();
        }
        expect(await during).toEqual(Array(20).fill(200));
        expect(
          await within(
            attackerClosed.then(() => 'closed'),
            5000,
            'still open',
          ),
        ).toBe('closed');
        expect(goaway).toBe(true);
        expect((await h2Request(bystander, '/api/auth/bystander-after')).status).toBe(200);
        expect(target.gateway.child.exitCode).toBeNull();
      } finally {
        attacker.destroy();
        await closeSession(bystander);
      }
    });
  });

  describe('draining (SIGTERM) over HTTP/2', () => {
    const auth = useStub('auth');

    it('sends GOAWAY to HTTP/2 sessions as the drain begins, finishes the stream in flight with 200, and exits 0', async () => {
      const gateway = await startGateway(
        {
          AUTH_SERVICE_URL: auth.stub.url,
          ...tlsEnv(pki.certs.leaf),
          SHUTDOWN_TIMEOUT_MS: '10000',
        },
        tls(),
      );
      const session = await openSession(gateway.url, ca());
      try {
        const goaway = new Promise<number>((resolve) =>
          session.once('goaway', () => resolve(Date.now())),
        );
        const url = '/api/auth/delay?ms=1000&drain=1';
        const inFlight = h2Request(session, url);
        await auth.stub.waitFor((r) => r.url === url);
        const exited = once(gateway.child, 'exit');
        const signalledAt = Date.now();
        gateway.child.kill('SIGTERM');

        const res = await inFlight;
        const answeredAt = Date.now();
        expect(res.status).toBe(200);
        expect(res.json()).toMatchObject({ url });
        const goawayAt = await within(goaway, 1000, Infinity);
        expect(goawayAt - signalledAt).toBeLessThan(500);
        expect(goawayAt).toBeLessThan(answeredAt);
        // A drained session must not hold the process until SHUTDOWN_TIMEOUT_MS.
        expect(
          await within(
            exited.then(([code]) => code),
            3000,
            'still running',
          ),
        ).toBe(0);
      } finally {
        session.destroy();
        await gateway.stop();
      }
    });
  });
});
