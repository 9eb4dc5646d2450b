import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { httpRequest, startGateway } from '@helix/shared-testing';
import {
  describeWith,
  PROMETHEUS,
  type PrometheusServer,
  PROMTOOL,
  startPrometheus,
} from './real-deps';
import { closedPort, until, useStubbedGateway } from './support';

/** The scrape configuration the README tells operators to paste into prometheus.yml. */
function readmeScrapeConfig(): string {
  const readme = readFileSync(resolve(__dirname, '../../../README.md'), 'utf8');
  const block =
    /A scrape configuration to paste into `prometheus.yml`:\n\n```yaml\n([\s\S]*?)```/.exec(readme);
  if (!block) throw new Error('README.md has no scrape configuration block');
  return block[1];
}

interface QueryResult {
  status: string;
  data: {
    resultType: string;
    result: { metric: Record<string, string>; value: [number, string] }[];
  };
}

async function query(prometheus: PrometheusServer, promql: string): Promise<QueryResult> {
  const res = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(promql)}`);
  expect(res.status).toBe(200);
  return (await res.json()) as QueryResult;
}

/** The single value of an instant query, or undefined while it has no result. */
async function scalar(prometheus: PrometheusServer, promql: string): Promise<number | undefined> {
  const { data } = await query(prometheus, promql);
  return data.result.length === 1 ? Number(data.result[0].value[1]) : undefined;
}

/** `promtool check metrics` on a /metrics body: its exit code and what it printed. */
async function promtoolCheck(text: string): Promise<{ code: number | null; output: string }> {
  const child = spawn(PROMTOOL, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stdin.end(text);
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output };
}

describeWith(
  PROMETHEUS,
  'a real Prometheus scraping the metrics port (README configuration)',
  () => {
    let metricsPort: number;
    const auth = useStubbedGateway(async () => {
      metricsPort = await closedPort();
      return { METRICS_PORT: String(metricsPort) };
    });
    let prometheus: PrometheusServer;

    beforeAll(async () => {
      // The README's job as written, pointed at this gateway and scraped every second.
      const config = readmeScrapeConfig()
        .replace("'helix-gateway:9464'", `'127.0.0.1:${metricsPort}'`)
        .replace('scrape_interval: 15s', 'scrape_interval: 1s');
      expect(config).toContain(`'127.0.0.1:${metricsPort}'`);
      prometheus = await startPrometheus(config);
    }, 30_000);

    afterAll(async () => {
      await prometheus?.stop();
    });

    it('sees the target up, the exact request count and a histogram_quantile of the request duration', async () => {
      for (let i = 0; i < 12; i++) {
        expect((await httpRequest(`${auth.gateway.url}/api/auth/${i}`)).status).toBe(200);
      }
      await until(
        async () =>
          (await scalar(prometheus, 'sum(helix_gateway_requests_total{route="/api/auth"})')) === 12,
        15_000,
      );
      const targets = (await (await fetch(`${prometheus.url}/api/v1/targets`)).json()) as {
        data: { activeTargets: { health: string; labels: Record<string, string> }[] };
      };
      expect(targets.data.activeTargets).toEqual([
        expect.objectContaining({
          health: 'up',
          labels: expect.objectContaining({
            job: 'helix-gateway',
            instance: `127.0.0.1:${metricsPort}`,
          }),
        }),
      ]);
      expect(await scalar(prometheus, 'up{job="helix-gateway"}')).toBe(1);
      expect(
        await scalar(
          prometheus,
          'sum(helix_gateway_request_duration_seconds_count{route="/api/auth"})',
        ),
      ).toBe(12);
      const p99 = await scalar(
        prometheus,
        'histogram_quantile(0.99, sum by (le) (helix_gateway_request_duration_seconds_bucket{route="/api/auth"}))',
      );
      // Finite, and inside the buckets: above 0, at most the largest finite bound (30 s).
      expect(p99).toBeGreaterThan(0);
      expect(p99).toBeLessThanOrEqual(30);
    });
  },
);

describeWith(PROMTOOL, 'promtool check metrics', () => {
  it.each([
    ['one process', {}],
    ['GATEWAY_WORKERS=2, added up by the primary', { GATEWAY_WORKERS: '2' }],
  ])(
    'passes on /metrics of %s, after traffic and an upstream failure',
    async (_, env) => {
      const metricsPort = await closedPort();
      const deadPort = await closedPort();
      const gateway = await startGateway({
        ...env,
        METRICS_PORT: String(metricsPort),
        AUTH_SERVICE_URL: `http://127.0.0.1:${deadPort}`,
        HEALTH_CHECK_INTERVAL_MS: '60000',
      });
      try {
        // Every kind of series: a proxied failure, a 404, the gateway's own endpoints.
        expect((await httpRequest(`${gateway.url}/api/auth/x`)).status).toBe(502);
        expect((await httpRequest(`${gateway.url}/nowhere`)).status).toBe(404);
        expect((await httpRequest(`${gateway.url}/health`)).status).toBe(200);
        let text = '';
        await until(async () => {
          const res = await httpRequest(`http://127.0.0.1:${metricsPort}/metrics`).catch(
            () => undefined,
          );
          text = res?.body.toString() ?? '';
          return text.includes('helix_gateway_upstream_errors_total{');
        }, 10_000);
        // The three gauges named like counters are gone; their by-type gauges stay.
        expect(text).not.toMatch(/^nodejs_active_(handles|requests|resources)_total/m);
        expect(text).toMatch(/^# TYPE nodejs_active_handles gauge$/m);
        expect(await promtoolCheck(text)).toEqual({ code: 0, output: '' });
      } finally {
        await gateway.stop();
      }
    },
    30_000,
  );
});
