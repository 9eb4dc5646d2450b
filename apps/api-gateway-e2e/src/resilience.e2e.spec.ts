import { writeFileSync, mkdtempSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
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
import { closedPort, until } from './support';

function routeFile(lines: string[]): string {
  const file = join(mkdtempSync(join(tmpdir(), 'helix-resilience-')), 'routes.yaml');
  writeFileSync(file, ['routes:', ...lines].join('\n'));
  return file;
}

interface InstanceState {
  instance: number;
  health: string;
  ejected: boolean;
}

async function instances(gateway: GatewayProcess, service: string): Promise<InstanceState[]> {
  const body = (await httpRequest(`${gateway.url}/health`)).json<{
    instances: Record<string, InstanceState[]>;
  }>();
  return body.instances[service];
}

function metric(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('upstream resilience', () => {
  const cleanups: (() => Promise<unknown>)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function stub(name: string, port = 0): Promise<StubUpstream> {
    const started = await startStubUpstream({ name, port });
    cleanups.push(() => started.close());
    return started;
  }

  async function gateway(env: Record<string, string>): Promise<GatewayProcess> {
    const started = await startGateway(env);
    cleanups.push(() => started.stop());
    return started;
  }

  it('does not count clients that leave as failures of the instance, so none ejects it', async () => {
    const a = await stub('a');
    const gw = await gateway({
      GATEWAY_ROUTES_FILE: routeFile([`  - { prefix: /api/a, service: a, targets: [${a.url}] }`]),
      PROXY_TIMEOUT_MS: '400',
      OUTLIER_CONSECUTIVE_FAILURES: '2',
    });
    // Five clients give up on slow requests: the upstream is cancelled, and past the proxy
    // timeout nothing is left to time out and be blamed on the instance.
    await Promise.all(
      Array.from({ length: 5 }, async () => {
        const controller = new AbortController();
        const pending = httpRequest(`${gw.url}/api/a/delay?ms=2000`, {
          signal: controller.signal,
        }).catch(() => 'aborted');
        await a.waitFor((r) => r.url.startsWith('/api/a/delay'));
        controller.abort();
        await pending;
      }),
    );
    await sleep(800);
    expect(await instances(gw, 'a')).toEqual([
      expect.objectContaining({ instance: 0, ejected: false }),
    ]);
    expect(gw.output()).not.toMatch(/upstream timeout|ejected/);
    expect((await httpRequest(`${gw.url}/api/a/x`)).status).toBe(200);
  });

  it('loses no idempotent request when one of three instances dies under load, ejects it, and re-admits it when it is back', async () => {
    const [a, b, c] = [await stub('a'), await stub('b'), await stub('c')];
    const gw = await gateway({
      GATEWAY_ROUTES_FILE: routeFile([
        `  - { prefix: /api/pool, service: pool, targets: [${a.url}, ${b.url}, ${c.url}] }`,
      ]),
      OUTLIER_CONSECUTIVE_FAILURES: '3',
      OUTLIER_EJECTION_MS: '1500',
      HEALTH_CHECK_INTERVAL_MS: '200',
    });
    let stop = false;
    const statuses: number[] = [];
    const workers = Array.from({ length: 4 }, async () => {
      while (!stop) statuses.push((await httpRequest(`${gw.url}/api/pool/x`)).status);
    });
    await sleep(300);
    const bPort = b.port;
    await b.close();
    const killedAt = Date.now();
    const ejectedAfter = await until(
      async () =>
        (await instances(gw, 'pool'))[1].ejected ||
        (await instances(gw, 'pool'))[1].health === 'down',
      3000,
    );
    await sleep(500);
    const servedWhileDown = b.requests.length;
    const back = await stub('b', bPort);
    await until(async () => {
      const state = (await instances(gw, 'pool'))[1];
      return state.health === 'up' && !state.ejected;
    }, 5000);
    await until(async () => back.requests.some((r) => r.url === '/api/pool/x'), 5000);
    stop = true;
    await Promise.all(workers);
    process.stdout.write(
      `resilience: ${statuses.length} requests, ${statuses.filter((s) => s !== 200).length} failed; instance out after ${ejectedAfter} ms (killed at +${killedAt % 1000} ms)\n`,
    );
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(statuses.length).toBeGreaterThan(100);
    expect(ejectedAfter).toBeLessThan(1500);
    expect(servedWhileDown).toBe(b.requests.length);
    expect(gw.output()).toMatch(/retrying on another instance after refused/);
  });

  it('answers 503 at once, in under 10 ms, when every instance is down', async () => {
    const gw = await gateway({
      GATEWAY_ROUTES_FILE: routeFile([
        `  - { prefix: /api/dead, service: dead, targets: [http://127.0.0.1:${await closedPort()}, http://127.0.0.1:${await closedPort()}] }`,
      ]),
      HEALTH_CHECK_INTERVAL_MS: '100',
    });
    await until(async () => (await instances(gw, 'dead')).every((i) => i.health === 'down'), 3000);
    const timings: number[] = [];
    for (let i = 0; i < 5; i++) {
      const started = process.hrtime.bigint();
      const res = await httpRequest(`${gw.url}/api/dead/x`);
      timings.push(Number(process.hrtime.bigint() - started) / 1e6);
      expect(res.status).toBe(503);
      expect(res.json()).toMatchObject({
        statusCode: 503,
        message: 'No instance of the upstream service is available',
      });
    }
    expect(Math.min(...timings)).toBeLessThan(10);
    const health = await httpRequest(`${gw.url}/health/dead`);
    expect([health.status, health.json().status]).toEqual([503, 'down']);
  });

  it('retries an idempotent request on another instance, never a POST with a body', async () => {
    const live = await stub('live');
    const deadPort = await closedPort();
    const gw = await gateway({
      GATEWAY_ROUTES_FILE: routeFile([
        `  - { prefix: /api/two, service: two, targets: [http://127.0.0.1:${deadPort}, ${live.url}] }`,
      ]),
      // Neither checker nor detector takes the dead instance out: every other request meets it.
      HEALTH_CHECK_INTERVAL_MS: '60000',
      OUTLIER_CONSECUTIVE_FAILURES: '0',
      METRICS_PORT: String(await closedPort()),
    });
    const post = await httpRequest(`${gw.url}/api/two/orders`, {
      method: 'POST',
      body: '{"id":1}',
      headers: { 'x-request-id': 'post-1' },
    });
    expect(post.status).toBe(502);
    expect(live.requests.some((r) => r.url === '/api/two/orders')).toBe(false);

    const gets = [];
    for (let i = 0; i < 4; i++)
      gets.push(
        await httpRequest(`${gw.url}/api/two/items`, { headers: { 'x-request-id': `get-${i}` } }),
      );
    expect(gets.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(live.requests.filter((r) => r.url === '/api/two/items')).toHaveLength(4);
    // Access-log lines are written asynchronously: wait for the two retried ones.
    const retriedLines = () =>
      gw
        .output()
        .split('\n')
        .filter((l) => l.includes('"msg":"request"') && l.includes('"retries":1'));
    await until(async () => retriedLines().length >= 2, 2000);
    expect(retriedLines().map((l) => JSON.parse(l).requestId)).toEqual(['get-1', 'get-3']);
    const port = /metrics on http:\/\/[^:]+:(\d+)/.exec(gw.output())?.[1];
    const text = (await httpRequest(`http://127.0.0.1:${port}/metrics`)).body.toString();
    expect(metric(text, 'helix_gateway_retries_total', 'service="two"')).toBe(2);
  });

  it('holds the retry budget: retries add at most 20% of the load', async () => {
    const live = await stub('live');
    const gw = await gateway({
      GATEWAY_ROUTES_FILE: routeFile([
        `  - { prefix: /api/two, service: two, targets: [http://127.0.0.1:${await closedPort()}, ${live.url}] }`,
      ]),
      HEALTH_CHECK_INTERVAL_MS: '60000',
      OUTLIER_CONSECUTIVE_FAILURES: '0',
      RETRY_BUDGET_PERCENT: '20',
    });
    const statuses: number[] = [];
    for (let i = 0; i < 100; i++) statuses.push((await httpRequest(`${gw.url}/api/two/b`)).status);
    // Access-log lines are written asynchronously: wait for all hundred.
    const accessLines = () =>
      gw
        .output()
        .split('\n')
        .filter((l) => l.includes('"msg":"request"'));
    await until(
      async () => accessLines().filter((l) => l.includes('/api/two/b')).length >= 100,
      2000,
    );
    const retries = accessLines().filter((l) => l.includes('"retries":1')).length;
    process.stdout.write(
      `retry budget: ${retries} retries for 100 requests, ${statuses.filter((s) => s === 502).length} answered 502\n`,
    );
    expect(retries).toBeLessThanOrEqual(20 + 3);
    expect(retries).toBeGreaterThanOrEqual(15);
    expect(statuses.filter((s) => s === 502).length).toBe(50 - retries);
  });

  it('reloads the route file on SIGHUP under load with no failed request, and refuses a bad one', async () => {
    const [a, b] = [await stub('a'), await stub('b')];
    const file = routeFile([
      `  - { prefix: /api/a, service: a, targets: [${a.url}] }`,
      `  - { prefix: /api/old, service: old, targets: [${b.url}] }`,
    ]);
    const gw = await gateway({ GATEWAY_ROUTES_FILE: file });
    let stop = false;
    const statuses: number[] = [];
    const workers = Array.from({ length: 4 }, async () => {
      while (!stop) statuses.push((await httpRequest(`${gw.url}/api/a/x`)).status);
    });
    await sleep(200);
    writeFileSync(
      file,
      [
        'routes:',
        `  - { prefix: /api/a, service: a, targets: [${a.url}] }`,
        `  - { prefix: /api/b, service: b, targets: [${b.url}] }`,
      ].join('\n'),
    );
    gw.child.kill('SIGHUP');
    await until(async () => (await httpRequest(`${gw.url}/api/b/y`)).status === 200, 3000);
    await sleep(200);
    writeFileSync(file, 'routes:\n  - { prefix: /api/a, service: a, targets: [nope] }\n');
    gw.child.kill('SIGHUP');
    await sleep(300);
    stop = true;
    await Promise.all(workers);
    expect(statuses.length).toBeGreaterThan(50);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect((await httpRequest(`${gw.url}/api/old/z`)).status).toBe(404);
    expect((await httpRequest(`${gw.url}/api/b/y`)).json()).toMatchObject({ service: 'b' });
    expect(gw.output()).toMatch(
      /reload refused, the previous route table stays in force: Invalid configuration: GATEWAY_ROUTES_FILE=.* routes\[0\] \(prefix \/api\/a\) key \\"targets\\"/,
    );
    expect((await httpRequest(`${gw.url}/info`)).json().routes).toEqual([
      { prefix: '/api/a', service: 'a' },
      { prefix: '/api/b', service: 'b' },
    ]);
  });

  it("cuts a response body that goes idle past the route's idleTimeoutMs, but not server-sent events", async () => {
    const stalled = createServer((socket) => {
      socket.on('error', () => socket.destroy());
      socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello'));
    });
    await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => stalled.close(resolve)));
    const sse = await stub('sse');
    const gw = await gateway({
      GATEWAY_ROUTES_FILE: routeFile([
        `  - { prefix: /api/stall, service: stall, targets: [http://127.0.0.1:${(stalled.address() as AddressInfo).port}], idleTimeoutMs: 300 }`,
        `  - { prefix: /api/sse, service: sse, targets: [${sse.url}], idleTimeoutMs: 300 }`,
      ]),
    });
    const started = Date.now();
    await expect(httpRequest(`${gw.url}/api/stall/x`)).rejects.toThrow(
      /aborted|socket hang up|ECONNRESET/,
    );
    expect(Date.now() - started).toBeLessThan(2000);
    const events = await httpRequest(`${gw.url}/api/sse/sse?count=3&intervalMs=500`);
    expect(events.body.toString().match(/\n\n/g)).toHaveLength(3);
  });
});
