import { createHash, randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { Readable } from 'node:stream';
import { KNOWN_SERVICES } from '@helix/gateway-config';
import { httpRequest, patternSha256 } from '@helix/shared-testing';
import { SERVICE_NAMES, UUID, usePlatform } from './support';

describe('proxied routes', () => {
  const platform = usePlatform();

  it.each(SERVICE_NAMES)('routes the %s prefix with path and query byte for byte', async (name) => {
    const url = `${KNOWN_SERVICES[name].prefix}/a/b%20c/~d?x=1&y=%2F&z=a+b&empty=&flag`;
    const res = await httpRequest(platform.gateway.url + url);
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({ service: name, method: 'GET', url });
  });

  it('routes the bare prefix and a trailing slash', async () => {
    expect((await httpRequest(`${platform.gateway.url}/api/users`)).json()).toMatchObject({
      service: 'admin',
      url: '/api/users',
    });
    expect((await httpRequest(`${platform.gateway.url}/api/users/`)).json()).toMatchObject({
      service: 'admin',
      url: '/api/users/',
    });
  });

  it.each(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])(
    'proxies %s with its body',
    async (method) => {
      const body = method === 'GET' || method === 'OPTIONS' ? undefined : `payload of ${method}`;
      const res = await httpRequest(`${platform.gateway.url}/api/tenants/t1`, {
        method,
        body,
        headers: body ? { 'content-type': 'text/plain' } : {},
      });
      expect(res.status).toBe(200);
      expect(res.json()).toMatchObject({
        service: 'tenant',
        method,
        url: '/api/tenants/t1',
        bodySize: body?.length ?? 0,
        sha256: createHash('sha256')
          .update(body ?? '')
          .digest('hex'),
      });
    },
  );

  it('proxies HEAD with the headers and no body', async () => {
    const res = await httpRequest(`${platform.gateway.url}/api/tenants/head-check`, {
      method: 'HEAD',
    });
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(0);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    const seen = await platform.stubs.tenant.waitFor((r) => r.url === '/api/tenants/head-check');
    expect(seen.method).toBe('HEAD');
  });

  it('matches prefixes on a segment boundary', async () => {
    const res = await httpRequest(`${platform.gateway.url}/api/authx/login`);
    expect(res.status).toBe(404);
    expect(res.json()).toEqual({
      statusCode: 404,
      error: 'Not Found',
      message: 'No route matches this path',
      requestId: res.headers['x-request-id'],
    });
    expect(platform.stubs.auth.requests.some((r) => r.url.startsWith('/api/authx'))).toBe(false);
  });

  it('sends the forwarding headers and the request id upstream', async () => {
    const res = await httpRequest(`${platform.gateway.url}/api/auth/who`, {
      headers: {
        host: 'public.example.com',
        'x-forwarded-for': '198.51.100.9',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'spoofed.example',
        'x-request-id': 'client-id-42',
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      },
    });
    const { headers } = res.json<{ headers: Record<string, string> }>();
    expect(res.headers['x-request-id']).toBe('client-id-42');
    expect(headers).toMatchObject({
      host: new URL(platform.stubs.auth.url).host,
      'x-forwarded-for': '198.51.100.9, 127.0.0.1',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'public.example.com',
      via: '1.1 helix-gateway',
      'x-request-id': 'client-id-42',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
  });

  it('gives a request without a sane id a new UUID, echoed and forwarded', async () => {
    const res = await httpRequest(`${platform.gateway.url}/api/auth/id`, {
      headers: { 'x-request-id': 'bad id!' },
    });
    expect(res.headers['x-request-id']).toMatch(UUID);
    expect(res.json<{ headers: Record<string, string> }>().headers['x-request-id']).toBe(
      res.headers['x-request-id'],
    );
  });

  it('drops hop-by-hop headers in both directions, including those named in Connection', async () => {
    const res = await httpRequest(
      `${platform.gateway.url}/api/auth/hop?header=connection:x-upstream-secret&header=x-upstream-secret:1&header=keep-alive:timeout%3D99&header=x-kept:yes`,
      {
        headers: {
          connection: 'keep-alive, x-client-secret',
          'x-client-secret': 'hide me',
          'keep-alive': 'timeout=1',
          'proxy-authorization': 'Basic Zm9vOmJhcg==',
          te: 'trailers',
        },
      },
    );
    const { headers } = res.json<{ headers: Record<string, string> }>();
    for (const name of ['x-client-secret', 'keep-alive', 'proxy-authorization', 'te']) {
      expect(headers[name]).toBeUndefined();
    }
    expect(res.headers['x-upstream-secret']).toBeUndefined();
    expect(res.headers['keep-alive']).toBeUndefined();
    expect(res.headers['x-kept']).toBe('yes');
    expect(res.headers.via).toBe('1.1 helix-gateway');
  });

  it('streams a 10 MiB upload byte for byte', async () => {
    const body = randomBytes(10 * 1024 * 1024);
    const res = await httpRequest(`${platform.gateway.url}/api/files/upload`, {
      method: 'POST',
      body,
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(body.length),
      },
    });
    expect(res.json()).toMatchObject({
      bodySize: body.length,
      sha256: createHash('sha256').update(body).digest('hex'),
    });
  });

  it('streams a chunked 10 MiB upload byte for byte', async () => {
    const chunks = Array.from({ length: 160 }, () => randomBytes(64 * 1024));
    const res = await httpRequest(`${platform.gateway.url}/api/files/upload`, {
      method: 'PUT',
      body: Readable.from(chunks),
    });
    const hash = createHash('sha256');
    chunks.forEach((c) => hash.update(c));
    expect(res.json()).toMatchObject({ bodySize: 10 * 1024 * 1024, sha256: hash.digest('hex') });
  });

  it('streams a 10 MiB download byte for byte', async () => {
    const bytes = 10 * 1024 * 1024;
    const res = await httpRequest(`${platform.gateway.url}/api/files/download?bytes=${bytes}`);
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe(String(bytes));
    expect(res.body.length).toBe(bytes);
    expect(createHash('sha256').update(res.body).digest('hex')).toBe(patternSha256(bytes));
  });

  it('delivers server-sent events one by one, as the upstream writes them', async () => {
    const arrivals: number[] = [];
    const started = Date.now();
    const text = await new Promise<string>((resolve, reject) => {
      request(`${platform.gateway.url}/api/kira/sse?count=3&intervalMs=400`, (res) => {
        expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
        let all = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          all += chunk;
          for (let i = 0; i < (chunk.match(/\n\n/g) ?? []).length; i++)
            arrivals.push(Date.now() - started);
        });
        res.on('end', () => resolve(all));
        res.on('error', reject);
      }).end();
    });
    expect(text).toBe(
      [0, 1, 2].map((i) => `id: ${i}\ndata: {"i":${i},"service":"kira"}\n\n`).join(''),
    );
    expect(arrivals).toHaveLength(3);
    // Each event arrives on its own, about 400 ms apart, not all at the end.
    expect(arrivals[1] - arrivals[0]).toBeGreaterThan(250);
    expect(arrivals[2] - arrivals[1]).toBeGreaterThan(250);
  });

  it('reuses upstream connections (keep-alive)', async () => {
    const before = platform.stubs.vera.connections;
    const agent = new Agent({ keepAlive: true, maxSockets: 10 });
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        httpRequest(`${platform.gateway.url}/api/vera/k${i}`, { agent }),
      ),
    );
    agent.destroy();
    const opened = platform.stubs.vera.connections - before;
    expect(opened).toBeGreaterThan(0);
    expect(opened).toBeLessThanOrEqual(20);
  });

  it('aborts the upstream request when the client disconnects', async () => {
    const aborted = new Promise((resolve) =>
      platform.stubs.cleverscreen.events.once('aborted', (r: { url: string }) => resolve(r.url)),
    );
    const controller = new AbortController();
    const pending = httpRequest(`${platform.gateway.url}/api/cleverscreen/hang`, {
      signal: controller.signal,
    });
    await platform.stubs.cleverscreen.waitFor((r) => r.url === '/api/cleverscreen/hang');
    controller.abort();
    await expect(pending).rejects.toThrow();
    await expect(aborted).resolves.toBe('/api/cleverscreen/hang');
  });
});
