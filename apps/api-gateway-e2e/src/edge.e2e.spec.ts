import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import {
  type GatewayProcess,
  httpRequest,
  patternSha256,
  startGateway,
  startStubUpstream,
  type StubUpstream,
} from '@helix/shared-testing';

const ALLOWED = 'https://app.example.com';
const PAD = 'a'.repeat(3000);

function headerCount(rawHeaders: string[], name: string): number {
  return rawHeaders.filter((h, i) => i % 2 === 0 && h.toLowerCase() === name).length;
}

describe('edge policies', () => {
  let stub: StubUpstream;
  let open: GatewayProcess;
  let listed: GatewayProcess;

  beforeAll(async () => {
    stub = await startStubUpstream({ name: 'auth' });
    [open, listed] = await Promise.all([
      startGateway({ AUTH_SERVICE_URL: stub.url }),
      startGateway({
        AUTH_SERVICE_URL: stub.url,
        CORS_ORIGIN: `${ALLOWED},http://localhost:5173`,
        CORS_CREDENTIALS: 'true',
        CORS_ALLOWED_METHODS: 'GET,POST',
        CORS_ALLOWED_HEADERS: 'Content-Type,Authorization',
        HSTS_MAX_AGE_S: '0',
      }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([open?.stop(), listed?.stop()]);
    await stub?.close();
  });

  describe('CORS with *', () => {
    it('answers a preflight itself with 204, allowing what it asks for, and never forwards it', async () => {
      const proxied = () => stub.requests.filter((r) => r.url !== '/health').length;
      const before = proxied();
      const res = await httpRequest(`${open.url}/api/auth/login`, {
        method: 'OPTIONS',
        headers: {
          origin: 'https://anywhere.example',
          'access-control-request-method': 'PATCH',
          'access-control-request-headers': 'content-type,x-custom',
        },
      });
      expect(res.status).toBe(204);
      expect(res.body.length).toBe(0);
      expect(res.headers).toMatchObject({
        'access-control-allow-origin': '*',
        'access-control-allow-methods': 'PATCH',
        'access-control-allow-headers': 'content-type,x-custom',
        'access-control-max-age': '600',
        vary: 'Access-Control-Request-Method, Access-Control-Request-Headers',
      });
      expect(res.headers['access-control-allow-credentials']).toBeUndefined();
      expect(proxied()).toBe(before);
    });

    it('sets * and the exposed headers, never credentials, and replaces the upstream CORS headers', async () => {
      const res = await httpRequest(
        `${open.url}/api/auth/x?header=access-control-allow-origin:https://evil.example&header=access-control-allow-credentials:true`,
        { headers: { origin: 'https://anywhere.example' } },
      );
      expect(res.headers['access-control-allow-origin']).toBe('*');
      expect(headerCount(res.rawHeaders, 'access-control-allow-origin')).toBe(1);
      expect(res.headers['access-control-allow-credentials']).toBeUndefined();
      expect(res.headers['access-control-expose-headers']).toBe(
        'X-Request-Id, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After',
      );
    });

    it('proxies an OPTIONS request that is not a preflight', async () => {
      const res = await httpRequest(`${open.url}/api/auth/opt`, { method: 'OPTIONS' });
      expect(res.json()).toMatchObject({ method: 'OPTIONS', url: '/api/auth/opt' });
    });
  });

  describe('CORS with a list of origins', () => {
    it('echoes a listed origin with Vary, credentials and exactly one Allow-Origin', async () => {
      const res = await httpRequest(
        `${listed.url}/api/auth/x?header=access-control-allow-origin:*&header=vary:Accept-Language`,
        {
          headers: { origin: ALLOWED },
        },
      );
      expect(res.status).toBe(200);
      expect(res.headers['access-control-allow-origin']).toBe(ALLOWED);
      expect(headerCount(res.rawHeaders, 'access-control-allow-origin')).toBe(1);
      expect(res.headers['access-control-allow-credentials']).toBe('true');
      expect(res.headers.vary).toBe('Accept-Language, Origin');
    });

    it.each([
      'null',
      'http://app.example.com',
      'https://app.example.com:8443',
      'https://app.example.com.evil.io',
      'https://evil.example',
    ])('gives %s no Access-Control-Allow-Origin (attack: origin spoofing)', async (origin) => {
      const res = await httpRequest(`${listed.url}/api/auth/x`, { headers: { origin } });
      expect(res.status).toBe(200);
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
      expect(res.headers['access-control-allow-credentials']).toBeUndefined();
      expect(res.headers.vary).toBe('Origin');
      const preflight = await httpRequest(`${listed.url}/api/auth/x`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST' },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    });

    it('answers a preflight with the configured methods and headers', async () => {
      const res = await httpRequest(`${listed.url}/api/auth/x`, {
        method: 'OPTIONS',
        headers: {
          origin: ALLOWED,
          'access-control-request-method': 'DELETE',
          'access-control-request-headers': 'x-other',
        },
      });
      expect(res.status).toBe(204);
      expect(res.headers).toMatchObject({
        'access-control-allow-origin': ALLOWED,
        'access-control-allow-credentials': 'true',
        'access-control-allow-methods': 'GET, POST',
        'access-control-allow-headers': 'Content-Type, Authorization',
        vary: 'Origin',
      });
    });
  });

  describe('security headers', () => {
    const expected = {
      'content-security-policy': "default-src 'none';frame-ancestors 'none'",
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-resource-policy': 'same-origin',
      'origin-agent-cluster': '?1',
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
      'x-dns-prefetch-control': 'off',
      'x-download-options': 'noopen',
      'x-frame-options': 'SAMEORIGIN',
      'x-permitted-cross-domain-policies': 'none',
      'x-xss-protection': '0',
    };

    it('puts Helmet headers on gateway responses, with HSTS, and no X-Powered-By', async () => {
      for (const path of ['/heartbeat', '/info', '/nothing']) {
        const res = await httpRequest(open.url + path);
        expect(res.headers).toMatchObject({
          ...expected,
          'strict-transport-security': 'max-age=31536000; includeSubDomains',
        });
        expect(res.headers['x-powered-by']).toBeUndefined();
      }
    });

    it("puts them on proxied responses without overwriting the upstream's own", async () => {
      const res = await httpRequest(
        `${open.url}/api/auth/x?header=content-security-policy:default-src%20'self'&header=x-powered-by:Express`,
      );
      expect(res.headers).toMatchObject({
        ...expected,
        'content-security-policy': "default-src 'self'",
      });
      expect(res.headers['x-powered-by']).toBeUndefined();
    });

    it('leaves HSTS out when HSTS_MAX_AGE_S=0', async () => {
      const res = await httpRequest(`${listed.url}/heartbeat`);
      expect(res.headers['strict-transport-security']).toBeUndefined();
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    });
  });

  describe('compression', () => {
    it.each([
      ['gzip', gunzipSync],
      ['br', brotliDecompressSync],
    ] as const)('compresses a JSON body of at least 1 KiB with %s', async (encoding, decode) => {
      const res = await httpRequest(`${open.url}/api/auth/big`, {
        headers: { 'accept-encoding': encoding, 'x-pad': PAD },
      });
      expect(res.headers['content-encoding']).toBe(encoding);
      expect(res.headers.vary).toContain('Accept-Encoding');
      expect(res.headers['content-length']).toBeUndefined();
      const body = JSON.parse(decode(res.body).toString());
      expect(body.headers['x-pad']).toBe(PAD);
    });

    it('leaves a body under 1 KiB, an already-encoded body and a no-transform body alone', async () => {
      const small = await httpRequest(`${open.url}/api/auth/s`, {
        headers: { 'accept-encoding': 'gzip' },
      });
      expect(small.headers['content-encoding']).toBeUndefined();
      expect(small.json().service).toBe('auth');

      const encoded = await httpRequest(
        `${open.url}/api/auth/e?header=content-encoding:identity-test`,
        {
          headers: { 'accept-encoding': 'gzip', 'x-pad': PAD },
        },
      );
      expect(encoded.headers['content-encoding']).toBe('identity-test');
      expect(JSON.parse(encoded.body.toString()).headers['x-pad']).toBe(PAD);

      const noTransform = await httpRequest(
        `${open.url}/api/auth/n?header=cache-control:no-transform`,
        {
          headers: { 'accept-encoding': 'gzip', 'x-pad': PAD },
        },
      );
      expect(noTransform.headers['content-encoding']).toBeUndefined();

      // Arbitrary binary (archives, images): compressing it would only cost CPU.
      const binary = await httpRequest(`${open.url}/api/auth/download?bytes=65536`, {
        headers: { 'accept-encoding': 'gzip, br' },
      });
      expect(binary.headers['content-encoding']).toBeUndefined();
      expect(binary.body.length).toBe(65536);
    });

    it('streams a compressed download without buffering it whole', async () => {
      const bytes = 8 * 1024 * 1024;
      const res = await httpRequest(
        `${open.url}/api/auth/download?bytes=${bytes}&chunked=1&header=content-type:text/plain`,
        {
          headers: { 'accept-encoding': 'gzip' },
        },
      );
      expect(res.headers['content-encoding']).toBe('gzip');
      const plain = gunzipSync(res.body);
      expect(plain.length).toBe(bytes);
      expect(createHash('sha256').update(plain).digest('hex')).toBe(patternSha256(bytes));
    });

    it('never compresses or delays server-sent events', async () => {
      const arrivals: number[] = [];
      const started = Date.now();
      const encoding = await new Promise<string | undefined>((resolve, reject) => {
        request(
          `${open.url}/api/auth/sse?count=3&intervalMs=400`,
          { headers: { 'accept-encoding': 'gzip, br' } },
          (res) => {
            res.on('data', () => arrivals.push(Date.now() - started));
            res.on('end', () => resolve(res.headers['content-encoding']));
            res.on('error', reject);
          },
        ).end();
      });
      expect(encoding).toBeUndefined();
      expect(arrivals.length).toBeGreaterThanOrEqual(3);
      expect(arrivals[arrivals.length - 1] - arrivals[0]).toBeGreaterThan(600);
    });
  });
});
