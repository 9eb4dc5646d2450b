import { httpRequest } from '@helix/shared-testing';
import { closedPort, SERVICE_NAMES, UUID, usePlatform } from './support';

describe('gateway endpoints', () => {
  const platform = usePlatform(async () => ({
    VERA_SERVICE_URL: `http://127.0.0.1:${await closedPort()}`,
    HEALTH_CHECK_INTERVAL_MS: '200',
  }));

  it('runs on Node 24, the jest runner too', async () => {
    process.stdout.write(`e2e runner on Node ${process.version}\n`);
    expect(process.version).toMatch(/^v24\./);
    const info = (await httpRequest(`${platform.gateway.url}/info`)).json();
    expect(info.node).toMatch(/^v24\./);
  });

  it('answers /heartbeat without touching an upstream', async () => {
    const before = SERVICE_NAMES.map((n) => platform.stubs[n].requests.length);
    const res = await httpRequest(`${platform.gateway.url}/heartbeat`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
    expect(res.headers['x-request-id']).toMatch(UUID);
    expect(res.headers['x-powered-by']).toBeUndefined();
    expect(
      SERVICE_NAMES.map(
        (n) => platform.stubs[n].requests.filter((r) => r.url !== '/health').length,
      ),
    ).toEqual(
      before.map(
        (_, i) =>
          platform.stubs[SERVICE_NAMES[i]].requests.filter((r) => r.url !== '/health').length,
      ),
    );
  });

  it('reports every service from the background checker in /health', async () => {
    let body: Record<string, unknown> = {};
    for (let i = 0; i < 50; i++) {
      body = (await httpRequest(`${platform.gateway.url}/health`)).json();
      if (!Object.values(body.services as object).includes('unknown')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(body).toEqual({
      status: 'degraded',
      uptime: expect.any(Number),
      version: '0.1.0',
      services: {
        auth: 'up',
        tenant: 'up',
        admin: 'up',
        file: 'up',
        kira: 'up',
        vera: 'down',
        cleverscreen: 'up',
      },
      // Per instance, with no URL: an index, the checker's verdict, ejection and load.
      instances: expect.objectContaining({
        auth: [{ instance: 0, health: 'up', ejected: false, inFlight: 0 }],
        vera: [{ instance: 0, health: 'down', ejected: false, inFlight: 0 }],
      }),
    });
  });

  it('answers /health at once, whatever the upstreams do', async () => {
    const started = Date.now();
    await Promise.all(
      Array.from({ length: 20 }, () => httpRequest(`${platform.gateway.url}/health`)),
    );
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('shows the route table in /info, and no upstream URL', async () => {
    const res = await httpRequest(`${platform.gateway.url}/info`);
    const info = res.json();
    expect(info).toEqual({
      name: '@helix/api-gateway',
      version: '0.1.0',
      node: expect.stringMatching(/^v24\./),
      uptime: expect.any(Number),
      routes: [
        { prefix: '/api/auth', service: 'auth' },
        { prefix: '/api/tenants', service: 'tenant' },
        { prefix: '/api/users', service: 'admin' },
        { prefix: '/api/files', service: 'file' },
        { prefix: '/api/kira', service: 'kira' },
        { prefix: '/api/vera', service: 'vera' },
        { prefix: '/api/cleverscreen', service: 'cleverscreen' },
      ],
    });
    const text = res.body.toString();
    for (const name of SERVICE_NAMES) expect(text).not.toContain(String(platform.stubs[name].port));
    expect(text).not.toMatch(/http:|127\.0\.0\.1/);
  });

  it("passes a service's own /health status and body through", async () => {
    const res = await httpRequest(`${platform.gateway.url}/health/kira`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', service: 'kira' });
    expect(res.headers['x-request-id']).toMatch(UUID);
    const seen = await platform.stubs.kira.waitFor(
      (r) => r.headers['x-request-id'] === res.headers['x-request-id'],
    );
    expect(seen.url).toBe('/health');
  });
});
