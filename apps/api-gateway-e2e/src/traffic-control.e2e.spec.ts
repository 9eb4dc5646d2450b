import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import {
  type GatewayProcess,
  httpRequest,
  type HttpResult,
  startGateway,
  startStubUpstream,
  type StubUpstream,
} from '@helix/shared-testing';
import { closedPort, UUID } from './support';

/** Sends `count` requests at once, each on its own connection, timing each answer. */
function burst(url: string, count: number): Promise<{ res: HttpResult; ms: number }[]> {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const started = Date.now();
      const res = await httpRequest(url, { agent: false });
      return { res, ms: Date.now() - started };
    }),
  );
}

function seenOn(stubs: StubUpstream[], path: string): number {
  return stubs.reduce((n, s) => n + s.requests.filter((r) => r.url === path).length, 0);
}

function metricValue(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('concurrency caps per service (UPSTREAM_MAX_IN_FLIGHT)', () => {
  let stub: StubUpstream;
  let gateway: GatewayProcess;
  let metricsUrl: string;

  beforeAll(async () => {
    stub = await startStubUpstream({ name: 'auth' });
    const metricsPort = await closedPort();
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    gateway = await startGateway({
      AUTH_SERVICE_URL: stub.url,
      UPSTREAM_MAX_IN_FLIGHT: '5',
      METRICS_PORT: String(metricsPort),
    });
  });

  afterAll(async () => {
    await gateway?.stop();
    await stub?.close();
  });

  it('lets exactly 5 of 20 concurrent requests reach the upstream; 15 get 503 at once and the 5 finish', async () => {
    const path = '/api/auth/delay?ms=1000';
    const results = await burst(`${gateway.url}${path}`, 20);
    const admitted = results.filter((r) => r.res.status === 200);
    const shed = results.filter((r) => r.res.status === 503);
    expect(admitted).toHaveLength(5);
    expect(shed).toHaveLength(15);
    expect(seenOn([stub], path)).toBe(5);
    for (const { res, ms } of shed) {
      expect(ms).toBeLessThan(100);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.json()).toEqual({
        statusCode: 503,
        error: 'Service Unavailable',
        message: 'The auth service is at capacity; try again shortly',
        requestId: expect.stringMatching(UUID),
      });
    }
    for (const { res, ms } of admitted) {
      expect(res.json()).toMatchObject({ service: 'auth', url: path });
      expect(ms).toBeGreaterThanOrEqual(1000);
    }
    // The slots are free again once the requests are done.
    const after = await httpRequest(`${gateway.url}/api/auth/after`);
    expect(after.status).toBe(200);
  });

  it('counts what it refused in helix_gateway_shed_total and shows the in-flight figure', async () => {
    const before = metricValue(
      (await httpRequest(metricsUrl)).body.toString(),
      'helix_gateway_shed_total',
      'route="/api/auth",reason="capacity"',
    );
    const pending = burst(`${gateway.url}/api/auth/delay?ms=800`, 8);
    await sleep(300);
    const during = (await httpRequest(metricsUrl)).body.toString();
    expect(metricValue(during, 'helix_gateway_upstream_in_flight', 'service="auth"')).toBe(5);
    await pending;
    const after = (await httpRequest(metricsUrl)).body.toString();
    expect(
      metricValue(after, 'helix_gateway_shed_total', 'route="/api/auth",reason="capacity"'),
    ).toBe(before + 3);
    expect(metricValue(after, 'helix_gateway_upstream_in_flight', 'service="auth"')).toBe(0);
  });

  it('counts an open WebSocket against the cap until it closes', async () => {
    const sockets = await Promise.all(
      Array.from(
        { length: 5 },
        () =>
          new Promise<WebSocket>((resolve, reject) => {
            const ws = new WebSocket(`${gateway.url.replace('http', 'ws')}/api/auth/ws`);
            ws.once('open', () => resolve(ws));
            ws.once('error', reject);
          }),
      ),
    );
    const refused = await httpRequest(`${gateway.url}/api/auth/while-full`);
    expect(refused.status).toBe(503);
    for (const ws of sockets) ws.close();
    await sleep(300);
    expect((await httpRequest(`${gateway.url}/api/auth/after-close`)).status).toBe(200);
  });
});

describe('a route-level maxInFlight, counted across instances', () => {
  let stubs: StubUpstream[];
  let gateway: GatewayProcess;
  let dir: string;

  beforeAll(async () => {
    stubs = await Promise.all([
      startStubUpstream({ name: 'file' }),
      startStubUpstream({ name: 'file' }),
    ]);
    dir = await mkdtemp(join(tmpdir(), 'helix-caps-'));
    const routesFile = join(dir, 'routes.yaml');
    await writeFile(
      routesFile,
      [
        'routes:',
        '  - prefix: /api/files',
        '    service: file',
        `    targets: [${stubs.map((s) => s.url).join(', ')}]`,
        '    maxInFlight: 3',
        '',
      ].join('\n'),
    );
    // The global cap is far higher: the route's own wins.
    gateway = await startGateway({
      GATEWAY_ROUTES_FILE: routesFile,
      UPSTREAM_MAX_IN_FLIGHT: '100',
    });
  });

  afterAll(async () => {
    await gateway?.stop();
    await Promise.all(stubs?.map((s) => s.close()) ?? []);
    await rm(dir, { recursive: true, force: true });
  });

  it('admits 3 of 10 concurrent requests over both instances together', async () => {
    const path = '/api/files/delay?ms=800';
    const results = await burst(`${gateway.url}${path}`, 10);
    expect(results.filter((r) => r.res.status === 200)).toHaveLength(3);
    expect(results.filter((r) => r.res.status === 503)).toHaveLength(7);
    expect(seenOn(stubs, path)).toBe(3);
    // Round-robin spread the three over both instances.
    expect(stubs.map((s) => s.requests.filter((r) => r.url === path).length).sort()).toEqual([
      1, 2,
    ]);
  });
});
