import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { type GatewayProcess, httpRequest, startGateway } from '@helix/shared-testing';
import { closedPort, usePlatform } from './support';

describe('upstream failures', () => {
  let deadPort: number;
  const platform = usePlatform(async () => {
    deadPort = await closedPort();
    return { AUTH_SERVICE_URL: `http://127.0.0.1:${deadPort}`, PROXY_TIMEOUT_MS: '600' };
  });

  function expectError(
    res: Awaited<ReturnType<typeof httpRequest>>,
    statusCode: number,
    error: string,
    message: string,
  ) {
    expect(res.status).toBe(statusCode);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.json()).toEqual({
      statusCode,
      error,
      message,
      requestId: res.headers['x-request-id'],
    });
    // No response on the public port names an internal host or port.
    expect(res.body.toString()).not.toMatch(/127\.0\.0\.1|localhost|-service|http:/);
  }

  it('answers 502 when the upstream refuses the connection', async () => {
    const res = await httpRequest(`${platform.gateway.url}/api/auth/login`, {
      method: 'POST',
      body: 'x',
    });
    expectError(res, 502, 'Bad Gateway', 'The upstream service refused the connection');
    expect(res.body.toString()).not.toContain(String(deadPort));
  });

  it('answers 502 when the upstream resets before responding', async () => {
    const res = await httpRequest(`${platform.gateway.url}/api/tenants/reset`);
    expectError(
      res,
      502,
      'Bad Gateway',
      'The upstream service closed the connection before responding',
    );
  });

  it('answers 504 after PROXY_TIMEOUT_MS and aborts the upstream request', async () => {
    const aborted = new Promise((resolve) =>
      platform.stubs.admin.events.once('aborted', (r: { url: string }) => resolve(r.url)),
    );
    const started = Date.now();
    const res = await httpRequest(`${platform.gateway.url}/api/users/hang`);
    const elapsed = Date.now() - started;
    expectError(res, 504, 'Gateway Timeout', 'The upstream service did not respond in time');
    expect(elapsed).toBeGreaterThanOrEqual(550);
    await expect(aborted).resolves.toBe('/api/users/hang');
  });

  it('does not time out a response that started in time but streams for longer', async () => {
    const res = await httpRequest(`${platform.gateway.url}/api/kira/sse?count=4&intervalMs=300`);
    expect(res.status).toBe(200);
    expect(res.body.toString().match(/\n\n/g)).toHaveLength(4);
  });

  it('cuts the client connection when the upstream resets mid-body, so the truncation shows', async () => {
    await expect(
      httpRequest(`${platform.gateway.url}/api/files/reset-after-headers`),
    ).rejects.toThrow(/aborted|socket hang up|ECONNRESET/);
  });

  it('answers 404 with the JSON body for a path no route takes', async () => {
    expectError(
      await httpRequest(`${platform.gateway.url}/nothing/here?x=<script>`),
      404,
      'Not Found',
      'No route matches this path',
    );
  });

  it('answers 503 down for the health of an unreachable service, and 404 for an unknown one', async () => {
    const down = await httpRequest(`${platform.gateway.url}/health/auth`);
    expect(down.status).toBe(503);
    expect(down.json()).toEqual({
      statusCode: 503,
      error: 'Service Unavailable',
      message: 'The auth service is unreachable',
      requestId: down.headers['x-request-id'],
      status: 'down',
      service: 'auth',
    });
    const unknown = await httpRequest(`${platform.gateway.url}/health/payments`);
    expectError(unknown, 404, 'Not Found', 'No route matches this path');
  });

  it('keeps serving after every failure above, with 20 concurrent failures answered fast', async () => {
    const started = Date.now();
    const results = await Promise.all(
      Array.from({ length: 20 }, () => httpRequest(`${platform.gateway.url}/api/auth/x`)),
    );
    // 502 while the dead instance is tried; 503 at once once the detector has ejected it.
    for (const r of results) expect([502, 503]).toContain(r.status);
    expect(Date.now() - started).toBeLessThan(1000);
    expect((await httpRequest(`${platform.gateway.url}/heartbeat`)).status).toBe(200);
    expect(platform.gateway.child.exitCode).toBeNull();
  });
});

describe('upstream connect timeout', () => {
  // An upstream that never completes a connection: a listener whose event loop is blocked, so
  // it never accepts, with its accept queue (backlog 1) filled by the test's own sockets. The
  // kernel then drops every further SYN, as a firewall that silently drops would.
  let listener: ChildProcess;
  let gateway: GatewayProcess;
  const fillers: Socket[] = [];
  beforeAll(async () => {
    listener = spawn(
      process.execPath,
      [
        '-e',
        `require('node:net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, function () {
          process.stdout.write(this.address().port + '\\n');
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);
        });`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const [line] = (await once(listener.stdout as Readable, 'data')) as [Buffer];
    const port = Number(line.toString().trim());
    // Connect until one hangs: from then on the queue is full.
    for (let i = 0; i < 16; i++) {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      fillers.push(socket);
      const connected = await Promise.race([
        once(socket, 'connect').then(() => true),
        sleep(300).then(() => false),
      ]);
      if (!connected) break;
    }
    gateway = await startGateway({
      AUTH_SERVICE_URL: `http://127.0.0.1:${port}`,
      CONNECT_TIMEOUT_MS: '300',
      PROXY_TIMEOUT_MS: '5000',
      // One check at start-up fails; it takes two in a row to mark the instance down.
      HEALTH_CHECK_INTERVAL_MS: '3600000',
    });
  });
  afterAll(async () => {
    await gateway?.stop();
    for (const socket of fillers) socket.destroy();
    listener?.kill('SIGKILL');
  });

  it('answers 504 after CONNECT_TIMEOUT_MS, long before PROXY_TIMEOUT_MS', async () => {
    const started = Date.now();
    const res = await httpRequest(`${gateway.url}/api/auth/login`);
    const elapsed = Date.now() - started;
    expect(res.status).toBe(504);
    expect(res.json()).toMatchObject({
      error: 'Gateway Timeout',
      message: 'The upstream service could not be reached in time',
    });
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(3000);
  });
});
