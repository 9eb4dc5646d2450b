import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type GatewayProcess,
  httpRequest,
  startGateway,
  startStubUpstream,
  type StubUpstream,
} from '@helix/shared-testing';
import { DNSMASQ, describeWith, type DnsServer, startDnsmasq } from './real-deps';
import { closedPort, until } from './support';

/** Three loopback addresses, one stub each, all on one port: the pods behind one name. */
const ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4'] as const;
const NAME = 'svc.test';
const REFRESH_MS = 500;

/** Which stubs answered `count` requests, by the name each stub reports. */
async function spread(gateway: GatewayProcess, count: number): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const res = await httpRequest(`${gateway.url}/api/svc/x`);
    expect(res.status).toBe(200);
    const { service } = res.json<{ service: string }>();
    seen.set(service, (seen.get(service) ?? 0) + 1);
  }
  return seen;
}

describeWith(DNSMASQ, 'DNS discovery against a real dnsmasq', () => {
  let dns: DnsServer;
  const stubs: StubUpstream[] = [];
  let gateway: GatewayProcess;
  let metricsPort: number;

  beforeAll(async () => {
    stubs.push(await startStubUpstream({ name: ADDRESSES[0], host: ADDRESSES[0] }));
    for (const address of ADDRESSES.slice(1)) {
      stubs.push(await startStubUpstream({ name: address, host: address, port: stubs[0].port }));
    }
    dns = await startDnsmasq(ADDRESSES.slice(0, 2).map((a) => `${a} ${NAME}`));
    const file = join(mkdtempSync(join(tmpdir(), 'helix-discovery-')), 'routes.yaml');
    writeFileSync(
      file,
      `routes:\n  - { prefix: /api/svc, service: svc, targets: ["http://${NAME}:${stubs[0].port}"], discovery: dns }\n`,
    );
    metricsPort = await closedPort();
    gateway = await startGateway({
      GATEWAY_ROUTES_FILE: file,
      DNS_SERVERS: dns.address,
      DNS_REFRESH_MS: String(REFRESH_MS),
      METRICS_PORT: String(metricsPort),
    });
  });

  afterAll(async () => {
    await gateway?.stop();
    await dns?.stop();
    await Promise.all(stubs.map((s) => s.close()));
  });

  it('balances requests over every address the name resolves to, with the name as Host', async () => {
    const seen = await spread(gateway, 20);
    expect([...seen.keys()].sort()).toEqual([ADDRESSES[0], ADDRESSES[1]]);
    expect(seen.get(ADDRESSES[0])).toBe(10);
    const last = stubs[0].requests.at(-1);
    expect(last?.headers.host).toBe(`${NAME}:${stubs[0].port}`);
  });

  it('shows instances by index on /health and their addresses only on the metrics port', async () => {
    const health = (await httpRequest(`${gateway.url}/health`)).body.toString();
    expect(JSON.parse(health).instances.svc).toHaveLength(2);
    expect(health).not.toContain('127.0.0.2');
    const metrics = (await httpRequest(`http://127.0.0.1:${metricsPort}/metrics`)).body.toString();
    expect(metrics).toContain(
      `helix_gateway_upstream_address_info{service="svc",instance="0",address="127.0.0.2:${stubs[0].port}"} 1`,
    );
  });

  it('sends to an added address within seconds, and drains a removed one, finishing its request', async () => {
    await dns.setHosts(ADDRESSES.map((a) => `${a} ${NAME}`));
    const tookMs = await until(async () => (await spread(gateway, 6)).has(ADDRESSES[2]), 5000);
    expect(tookMs).toBeLessThan(5000);

    // A slow request in flight on the first address, which then leaves the answer.
    const slowTo0 = (async () => {
      for (;;) {
        const before = stubs[0].requests.length;
        const res = await httpRequest(`${gateway.url}/api/svc/delay?ms=1500`);
        if (stubs[0].requests.length > before) return res;
      }
    })();
    await stubs[0]
      .waitFor((r) => r.url.startsWith('/api/svc/delay'), 10_000)
      .catch(() => undefined);
    await dns.setHosts(ADDRESSES.slice(1).map((a) => `${a} ${NAME}`));
    await sleep(2 * REFRESH_MS + 1000);
    const seen = await spread(gateway, 12);
    expect(seen.has(ADDRESSES[0])).toBe(false);
    expect([...seen.keys()].sort()).toEqual([ADDRESSES[1], ADDRESSES[2]]);
    expect((await slowTo0).status).toBe(200);
  });

  it('keeps serving the last set, fast, while the resolver hangs, and says so once', async () => {
    dns.pause();
    try {
      const started = Date.now();
      let slowest = 0;
      while (Date.now() - started < 4 * REFRESH_MS + 2500) {
        const t0 = Date.now();
        expect((await httpRequest(`${gateway.url}/api/svc/x`)).status).toBe(200);
        slowest = Math.max(slowest, Date.now() - t0);
        await sleep(20);
      }
      // No request waited on a lookup (a lookup here takes 2 s to give up).
      expect(slowest).toBeLessThan(500);
      expect(gateway.output().match(/svc\.test could not be resolved/g)).toHaveLength(1);
      const metrics = (
        await httpRequest(`http://127.0.0.1:${metricsPort}/metrics`)
      ).body.toString();
      expect(metrics).toMatch(/helix_gateway_dns_lookup_failures_total\{service="svc"\} [1-9]/);
    } finally {
      dns.resume();
    }
    await until(async () => gateway.output().includes('svc.test resolves again'), 5000);
  });
});
