import { type GatewayProcess, httpRequest, startGateway } from '@helix/shared-testing';
import { closedPort, UUID, useStubbedGateway } from './support';

interface AccessLine {
  level: string;
  time: string;
  msg: string;
  requestId: string;
  method: string;
  path: string;
  route: string;
  service?: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  upstreamTtfbMs?: number;
  upstreamFailure?: string;
  clientIp: string;
  userAgent?: string;
}

function accessLines(gateway: GatewayProcess): AccessLine[] {
  return gateway
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{') && line.includes('"msg":"request"'))
    .map((line) => JSON.parse(line) as AccessLine);
}

async function lineFor(gateway: GatewayProcess, requestId: string): Promise<AccessLine> {
  for (let i = 0; i < 50; i++) {
    const line = accessLines(gateway).find((l) => l.requestId === requestId);
    if (line) return line;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no access-log line for ${requestId}`);
}

function sample(text: string, name: string, labels: Record<string, string>): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${name}{`) && wanted.every((w) => l.includes(w)));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('observability', () => {
  let metricsUrl: string;
  let deadPort: number;
  const auth = useStubbedGateway(async () => {
    deadPort = await closedPort();
    const metricsPort = await closedPort();
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    return {
      TENANT_SERVICE_URL: `http://127.0.0.1:${deadPort}`,
      METRICS_PORT: String(metricsPort),
      RATE_LIMIT_MAX: '1000',
      // One check at boot: the dead tenant stays short of the unhealthy threshold, so requests
      // still try it (502 refused) instead of being answered 503 unavailable at once.
      HEALTH_CHECK_INTERVAL_MS: '60000',
    };
  });

  it('writes one JSON access-log line per request, with secrets redacted', async () => {
    const res = await httpRequest(
      `${auth.gateway.url}/api/auth/login?user=ann&token=s3cret&Password=hunter2`,
      {
        method: 'POST',
        body: 'x'.repeat(100),
        headers: {
          'user-agent': 'e2e-agent/1.0',
          'x-request-id': 'log-line-1',
          authorization: 'Bearer very-secret',
          cookie: 'session=also-secret',
        },
      },
    );
    expect(res.status).toBe(200);
    const line = await lineFor(auth.gateway, 'log-line-1');
    expect(line).toEqual({
      level: 'info',
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      msg: 'request',
      requestId: 'log-line-1',
      method: 'POST',
      path: '/api/auth/login?user=ann&token=[REDACTED]&Password=[REDACTED]',
      route: '/api/auth',
      service: 'auth',
      status: 200,
      bytesIn: expect.any(Number),
      bytesOut: expect.any(Number),
      durationMs: expect.any(Number),
      upstreamTtfbMs: expect.any(Number),
      clientIp: '127.0.0.1',
      userAgent: 'e2e-agent/1.0',
    });
    expect(line.bytesIn).toBeGreaterThan(100);
    expect(line.bytesOut).toBeGreaterThan(res.body.length);
    expect(line.upstreamTtfbMs).toBeLessThanOrEqual(line.durationMs);
    expect(accessLines(auth.gateway).filter((l) => l.requestId === 'log-line-1')).toHaveLength(1);
    const text = auth.gateway.output();
    for (const secret of ['s3cret', 'hunter2', 'very-secret', 'also-secret'])
      expect(text).not.toContain(secret);
  });

  it('logs an upstream failure with its code', async () => {
    const res = await httpRequest(`${auth.gateway.url}/api/tenants/x`, {
      headers: { 'x-request-id': 'log-line-502' },
    });
    expect(res.status).toBe(502);
    expect(await lineFor(auth.gateway, 'log-line-502')).toMatchObject({
      route: '/api/tenants',
      service: 'tenant',
      status: 502,
      upstreamFailure: 'refused',
    });
  });

  it('adds Server-Timing to proxied responses: gw + upstream = total', async () => {
    const res = await httpRequest(`${auth.gateway.url}/api/auth/delay?ms=50`);
    const timing = String(res.headers['server-timing']);
    const parsed = Object.fromEntries(
      timing.split(',').map((part) => {
        const [name, dur] = part.trim().split(';dur=');
        return [name, Number(dur)];
      }),
    );
    expect(Object.keys(parsed)).toEqual(['gw', 'upstream', 'total']);
    expect(parsed.upstream).toBeGreaterThanOrEqual(45);
    expect(parsed.gw).toBeLessThan(parsed.total);
    expect(parsed.gw + parsed.upstream).toBeCloseTo(parsed.total, 2);
  });

  it('reflects known traffic in /metrics on the metrics port, never on the public port', async () => {
    const before = (await httpRequest(metricsUrl)).body.toString();
    for (let i = 0; i < 3; i++) await httpRequest(`${auth.gateway.url}/api/auth/m${i}`);
    await httpRequest(`${auth.gateway.url}/api/tenants/down`);
    await httpRequest(`${auth.gateway.url}/nowhere`);
    const res = await httpRequest(metricsUrl);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const after = res.body.toString();
    const delta = (name: string, labels: Record<string, string>) =>
      sample(after, name, labels) - sample(before, name, labels);
    expect(
      delta('helix_gateway_requests_total', {
        route: '/api/auth',
        method: 'GET',
        status_class: '2xx',
      }),
    ).toBe(3);
    expect(
      delta('helix_gateway_requests_total', {
        route: '/api/tenants',
        method: 'GET',
        status_class: '5xx',
      }),
    ).toBe(1);
    expect(
      delta('helix_gateway_requests_total', {
        route: 'unmatched',
        method: 'GET',
        status_class: '4xx',
      }),
    ).toBe(1);
    expect(
      delta('helix_gateway_upstream_errors_total', { service: 'tenant', code: 'refused' }),
    ).toBe(1);
    expect(delta('helix_gateway_upstream_duration_seconds_count', { service: 'auth' })).toBe(3);
    expect(
      delta('helix_gateway_request_duration_seconds_count', {
        route: '/api/auth',
        method: 'GET',
        status_class: '2xx',
      }),
    ).toBe(3);
    expect(after).toMatch(/^helix_gateway_requests_in_flight \d+$/m);
    expect(after).toMatch(/^helix_gateway_upstream_up\{service="auth"\} 1$/m);
    expect(after).toMatch(/^helix_gateway_upstream_instance_up\{service="auth",instance="0"\} 1$/m);
    expect(after).toMatch(/^helix_gateway_upstream_up\{service="tenant"\} 0$/m);
    expect(after).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(after).toMatch(/^nodejs_eventloop_lag_seconds /m);
    // Bounded labels: no raw path ever becomes a label.
    expect(after).not.toMatch(/\/api\/auth\/m\d|nowhere/);

    const publicMetrics = await httpRequest(`${auth.gateway.url}/metrics`);
    expect(publicMetrics.status).toBe(404);
    expect(publicMetrics.body.toString()).not.toContain('helix_gateway');
  });

  it('counts 429s', async () => {
    const limited = await startGateway({
      AUTH_SERVICE_URL: auth.stub.url,
      METRICS_PORT: String(await closedPort()),
      RATE_LIMIT_MAX: '1',
    });
    try {
      const port = /metrics on http:\/\/[^:]+:(\d+)/.exec(limited.output())?.[1];
      await httpRequest(`${limited.url}/api/auth/a`);
      await httpRequest(`${limited.url}/api/auth/a`);
      await httpRequest(`${limited.url}/api/auth/a`);
      const text = (await httpRequest(`http://127.0.0.1:${port}/metrics`)).body.toString();
      expect(sample(text, 'helix_gateway_rate_limited_total', { route: '/api/auth' })).toBe(2);
      expect(
        sample(text, 'helix_gateway_requests_total', { route: '/api/auth', status_class: '4xx' }),
      ).toBe(2);
    } finally {
      await limited.stop();
    }
  });

  it('gives every access-log line a request id', () => {
    for (const line of accessLines(auth.gateway))
      expect(line.requestId).toMatch(new RegExp(`${UUID.source}|^log-line`));
  });
});
