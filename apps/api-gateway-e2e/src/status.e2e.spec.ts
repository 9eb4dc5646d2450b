import { request } from 'node:http';
import { httpRequest, startGateway, startStubUpstream } from '@helix/shared-testing';
import { closedPort, SERVICE_NAMES, UUID, until, usePlatform } from './support';

/** The parts of /status.json these tests read (the field names are the contract's). */
interface StatusJson {
  gateway: { version: string; uptimeS: number; workers: number; inFlight: number };
  routes: {
    prefix: string;
    service: string;
    requests: number;
    errors: number;
    reqRate: number | null;
    p50Ms: number | null;
    p99Ms: number | null;
  }[];
  services: {
    name: string;
    failures: number;
    instances: {
      instance: number;
      address: string;
      health: string;
      ejected: boolean;
      inFlight: number;
    }[];
  }[];
  failures: { time: number; route: string; service: string; code: string; requestId: string }[];
  series: Record<string, { t: number[]; rps: (number | null)[] }>;
}

async function statusJson(metricsBase: string): Promise<StatusJson> {
  const res = await httpRequest(`${metricsBase}/status.json`);
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toBe('application/json');
  return res.json<StatusJson>();
}

function route(status: StatusJson, prefix: string): StatusJson['routes'][number] {
  const found = status.routes.find((r) => r.prefix === prefix);
  if (!found) throw new Error(`no route ${prefix} in /status.json`);
  return found;
}

/** The sum of helix_gateway_requests_total over every label set, from /metrics. */
async function requestsInMetrics(metricsBase: string): Promise<number> {
  const text = (await httpRequest(`${metricsBase}/metrics`)).body.toString();
  return text
    .split('\n')
    .filter((line) => line.startsWith('helix_gateway_requests_total{'))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

/** Reads the event stream until it has delivered `events` events, then closes it. */
function readEvents(url: string, events: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        const got = text.split('\n\n').filter((block) => block.includes('data: '));
        if (got.length >= events) {
          req.destroy();
          resolve(got.slice(0, events));
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('status page state (/status.json on the metrics port)', () => {
  let metricsBase: string;
  let deadPort: number;
  const platform = usePlatform(async () => {
    const metricsPort = await closedPort();
    deadPort = await closedPort();
    metricsBase = `http://127.0.0.1:${metricsPort}`;
    return {
      METRICS_PORT: String(metricsPort),
      FILE_SERVICE_URL: `http://127.0.0.1:${deadPort}`,
      // One check at boot: the dead file service stays short of the unhealthy threshold, so
      // requests still try it (502 refused) instead of being answered 503 at once.
      HEALTH_CHECK_INTERVAL_MS: '60000',
    };
  });

  beforeAll(async () => {
    // The first sample is taken within a second of start-up.
    await until(async () => (await httpRequest(`${metricsBase}/status.json`)).status === 200, 5000);
  });

  it('lists every route and service, counts proxied requests exactly, and gives their latency', async () => {
    const before = route(await statusJson(metricsBase), '/api/users').requests;
    for (let i = 0; i < 6; i++) {
      expect((await httpRequest(`${platform.gateway.url}/api/users/${i}`)).status).toBe(200);
    }
    await until(
      async () => route(await statusJson(metricsBase), '/api/users').requests === before + 6,
      3000,
    );
    const status = await statusJson(metricsBase);
    expect(status.routes.map((r) => [r.prefix, r.service])).toEqual([
      ['/api/auth', 'auth'],
      ['/api/tenants', 'tenant'],
      ['/api/users', 'admin'],
      ['/api/files', 'file'],
      ['/api/kira', 'kira'],
      ['/api/vera', 'vera'],
      ['/api/cleverscreen', 'cleverscreen'],
    ]);
    const users = route(status, '/api/users');
    expect(users.errors).toBe(0);
    expect(users.p99Ms).toEqual(expect.any(Number));
    expect(users.p99Ms).toBeGreaterThan(0);
    expect(users.p50Ms).toBeLessThanOrEqual(users.p99Ms as number);
    expect(status.gateway).toEqual(
      expect.objectContaining({ version: expect.any(String), workers: 1, inFlight: 0 }),
    );
    expect(status.services.map((s) => s.name)).toEqual(SERVICE_NAMES);
    const admin = status.services.find((s) => s.name === 'admin');
    // The metrics port is internal: it shows where the instance is.
    expect(admin?.instances).toEqual([
      {
        instance: 0,
        address: new URL(platform.stubs.admin.url).host,
        health: 'up',
        ejected: false,
        inFlight: 0,
        failuresInARow: 0,
      },
    ]);
    // 15 minutes of points per route: the series grows one point a second.
    expect(status.series['/api/users'].t.length).toBeGreaterThan(0);
    expect(status.series['/api/users'].t.length).toBeLessThanOrEqual(900);
  });

  it('counts an upstream failure as an error and lists it with its route, code and request id', async () => {
    const res = await httpRequest(`${platform.gateway.url}/api/files/x`, {
      headers: { 'x-request-id': 'status-failure-1' },
    });
    expect(res.status).toBe(502);
    await until(
      async () =>
        (await statusJson(metricsBase)).failures.some((f) => f.requestId === 'status-failure-1'),
      3000,
    );
    const status = await statusJson(metricsBase);
    expect(status.failures[0]).toEqual({
      time: expect.any(Number),
      route: '/api/files',
      service: 'file',
      instance: 0,
      code: 'refused',
      requestId: 'status-failure-1',
    });
    expect(route(status, '/api/files').errors).toBeGreaterThanOrEqual(1);
    expect(status.services.find((s) => s.name === 'file')?.failures).toBeGreaterThanOrEqual(1);
    expect(status.services.find((s) => s.name === 'file')?.instances[0].address).toBe(
      `127.0.0.1:${deadPort}`,
    );
  });

  it("does not count the status page's own requests, nor /metrics, as traffic", async () => {
    // What reached the upstreams, leaving out the background health checks.
    const proxied = () =>
      SERVICE_NAMES.flatMap((s) => platform.stubs[s].requests).filter(
        (r) => r.headers['user-agent'] !== 'helix-gateway-health-checker',
      ).length;
    const stubRequests = proxied();
    const counted = await requestsInMetrics(metricsBase);
    const routesBefore = (await statusJson(metricsBase)).routes.map((r) => r.requests);
    for (let i = 0; i < 5; i++) {
      expect((await httpRequest(`${metricsBase}/status`)).status).toBe(200);
      await statusJson(metricsBase);
      await requestsInMetrics(metricsBase);
    }
    // Two events from the stream: the snapshot and the next second's tick.
    const [snapshot, tick] = await readEvents(`${metricsBase}/status/events`, 2);
    expect(snapshot).toMatch(/^event: snapshot\ndata: \{/m);
    expect(tick).toMatch(/^event: tick\ndata: \{/m);
    expect(await requestsInMetrics(metricsBase)).toBe(counted);
    expect((await statusJson(metricsBase)).routes.map((r) => r.requests)).toEqual(routesBefore);
    expect(proxied()).toBe(stubRequests);
  });

  it('is not on the public port, where /status and /status.json are the JSON 404', async () => {
    for (const path of ['/status', '/status.json', '/status/events']) {
      const res = await httpRequest(`${platform.gateway.url}${path}`);
      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.json()).toEqual({
        statusCode: 404,
        error: 'Not Found',
        message: expect.any(String),
        requestId: expect.stringMatching(UUID),
      });
    }
  });

  it('serves the page itself self-contained, under a CSP that allows nothing from elsewhere', async () => {
    const res = await httpRequest(`${metricsBase}/status`);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toMatch(
      /^default-src 'none'; style-src 'sha256-[^']+'; script-src 'sha256-[^']+';/,
    );
    expect(csp).toContain("connect-src 'self'");
    const html = res.body.toString();
    // No URL to anything but the page's own event stream.
    expect(html).not.toMatch(/(src|href)="(?!data:)/);
    // The SVG namespace is a name, never fetched.
    expect(html.replaceAll('http://www.w3.org/2000/svg', '')).not.toMatch(/https?:\/\//);
    expect(html).toContain('new EventSource("status/events")');
  });
});

describe('status page with GATEWAY_WORKERS=2', () => {
  it("adds up both workers' figures in the primary, as /metrics does", async () => {
    const stub = await startStubUpstream({ name: 'auth' });
    const metricsPort = await closedPort();
    const metricsBase = `http://127.0.0.1:${metricsPort}`;
    const gateway = await startGateway({
      AUTH_SERVICE_URL: stub.url,
      GATEWAY_WORKERS: '2',
      METRICS_PORT: String(metricsPort),
    });
    try {
      await until(async () => {
        const res = await httpRequest(`${metricsBase}/status.json`);
        return res.status === 200 && res.json<StatusJson>().gateway.workers === 2;
      }, 10_000);
      // A new connection each: the primary hands connections to the workers in turn.
      for (let i = 0; i < 40; i++) {
        expect((await httpRequest(`${gateway.url}/api/auth/${i}`)).status).toBe(200);
      }
      await until(
        async () => route(await statusJson(metricsBase), '/api/auth').requests === 40,
        3000,
      );
      const status = await statusJson(metricsBase);
      expect(status.gateway.workers).toBe(2);
      // Each worker's checker sees the auth instance up; both views are one instance.
      expect(status.services.find((s) => s.name === 'auth')?.instances).toEqual([
        expect.objectContaining({ instance: 0, health: 'up', ejected: false, inFlight: 0 }),
      ]);
      // The same books as the primary's /metrics, whose own aggregation says the same.
      expect(await requestsInMetrics(metricsBase)).toBe(40);
    } finally {
      await gateway.stop();
      await stub.close();
    }
  }, 30_000);
});
