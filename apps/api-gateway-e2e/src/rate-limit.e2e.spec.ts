import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type GatewayProcess, httpRequest, startGateway } from '@helix/shared-testing';
import { useStub } from './support';

describe('rate limiting', () => {
  const tenant = useStub('tenant');
  const gateways: GatewayProcess[] = [];

  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((g) => g.stop()));
  });

  async function gateway(env: Record<string, string>): Promise<GatewayProcess> {
    const started = await startGateway({ TENANT_SERVICE_URL: tenant.stub.url, ...env });
    gateways.push(started);
    return started;
  }

  it('admits RATE_LIMIT_MAX requests per window, then answers 429 without touching the upstream', async () => {
    const gw = await gateway({ RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW_MS: '60000' });
    const before = tenant.stub.requests.filter((r) =>
      r.url.startsWith('/api/tenants/limited'),
    ).length;
    const results = [];
    for (let i = 0; i < 7; i++) results.push(await httpRequest(`${gw.url}/api/tenants/limited`));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 429, 429]);
    expect(results.map((r) => r.headers['ratelimit-remaining'])).toEqual([
      '4',
      '3',
      '2',
      '1',
      '0',
      '0',
      '0',
    ]);
    for (const r of results) expect(r.headers['ratelimit-limit']).toBe('5');
    // GCRA: 5 per 60 s is one every 12 s, and RateLimit-Reset says when the whole quota is back.
    expect(results.map((r) => r.headers['ratelimit-reset'])).toEqual([
      '12',
      '24',
      '36',
      '48',
      '60',
      '60',
      '60',
    ]);
    const limited = results[5];
    // One slot comes back 12 s after the last admitted request.
    expect(limited.headers['retry-after']).toBe('12');
    expect(limited.json()).toEqual({
      statusCode: 429,
      error: 'Too Many Requests',
      message: `Rate limit exceeded: retry in ${limited.headers['retry-after']} s`,
      requestId: limited.headers['x-request-id'],
    });
    expect(
      tenant.stub.requests.filter((r) => r.url.startsWith('/api/tenants/limited')).length - before,
    ).toBe(5);
    // Liveness is never limited; the gateway's other endpoints are.
    expect((await httpRequest(`${gw.url}/heartbeat`)).status).toBe(200);
    expect((await httpRequest(`${gw.url}/info`)).status).toBe(429);
  });

  it('cannot be escaped by rotating X-Forwarded-For when no proxy is trusted (attack: XFF rotation)', async () => {
    const gw = await gateway({ RATE_LIMIT_MAX: '3' });
    const statuses = [];
    for (let i = 0; i < 6; i++) {
      statuses.push(
        (
          await httpRequest(`${gw.url}/api/tenants/x`, {
            headers: { 'x-forwarded-for': `203.0.113.${i}` },
          })
        ).status,
      );
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429]);
  });

  it('keys on the address a trusted proxy reports, as TRUST_PROXY says', async () => {
    const gw = await gateway({ RATE_LIMIT_MAX: '1', TRUST_PROXY: 'loopback' });
    const a = await httpRequest(`${gw.url}/api/tenants/x`, {
      headers: { 'x-forwarded-for': '198.51.100.1' },
    });
    const b = await httpRequest(`${gw.url}/api/tenants/x`, {
      headers: { 'x-forwarded-for': '198.51.100.2' },
    });
    const a2 = await httpRequest(`${gw.url}/api/tenants/x`, {
      headers: { 'x-forwarded-for': '198.51.100.1' },
    });
    expect([a.status, b.status, a2.status]).toEqual([200, 200, 429]);
  });

  it('applies a stricter per-route limit from the route file', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'helix-rl-')), 'routes.yaml');
    writeFileSync(
      file,
      [
        'routes:',
        '  - prefix: /api/auth',
        '    service: auth',
        `    targets: [${tenant.stub.url}]`,
        '    rateLimit: { max: 2, windowMs: 60000 }',
        '  - prefix: /api/tenants',
        '    service: tenant',
        `    targets: [${tenant.stub.url}]`,
      ].join('\n'),
    );
    const gw = await gateway({ GATEWAY_ROUTES_FILE: file, RATE_LIMIT_MAX: '100' });
    const auth = [];
    for (let i = 0; i < 3; i++)
      auth.push(await httpRequest(`${gw.url}/api/auth/login`, { method: 'POST' }));
    expect(auth.map((r) => [r.status, r.headers['ratelimit-limit']])).toEqual([
      [200, '2'],
      [200, '2'],
      [429, '2'],
    ]);
    const tenants = await httpRequest(`${gw.url}/api/tenants/x`);
    expect([
      tenants.status,
      tenants.headers['ratelimit-limit'],
      tenants.headers['ratelimit-remaining'],
    ]).toEqual([200, '100', '99']);
  });

  it('gives no double burst at the window edge: 1, then 19 at 1.85 s, then 20 at 2.15 s admits at most 24', async () => {
    const gw = await gateway({ RATE_LIMIT_MAX: '20', RATE_LIMIT_WINDOW_MS: '2000' });
    const url = `${gw.url}/api/tenants/edge`;
    const wave = async (count: number) =>
      (await Promise.all(Array.from({ length: count }, () => httpRequest(url)))).filter(
        (r) => r.status === 200,
      ).length;
    const t0 = Date.now();
    const first = await wave(1);
    await sleep(t0 + 1850 - Date.now());
    const secondAt = Date.now();
    const second = await wave(19);
    await sleep(t0 + 2150 - Date.now());
    const third = await wave(20);
    expect([first, second]).toEqual([1, 19]);
    // A fixed window admits all 20 again. GCRA gives back one slot per 100 ms since the limit
    // was spent: 4 at 2.15 s (20% of the limit), measured from the waves' real times.
    expect(third).toBeGreaterThanOrEqual(1);
    expect(third).toBeLessThanOrEqual(Math.floor((Date.now() - secondAt) / 100) + 1);
  });

  it('turns off with RATE_LIMIT_MAX=0', async () => {
    const gw = await gateway({ RATE_LIMIT_MAX: '0' });
    const res = await httpRequest(`${gw.url}/api/tenants/x`);
    expect(res.status).toBe(200);
    expect(res.headers['ratelimit-limit']).toBeUndefined();
  });
});
