import { once } from 'node:events';
import { Agent } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpRequest, startGateway } from '@helix/shared-testing';
import { useStub } from './support';

describe('graceful shutdown (SIGTERM)', () => {
  const auth = useStub('auth');

  it('reports draining, keeps serving through the delay, then refuses new connections, finishes in-flight work and exits 0', async () => {
    const gateway = await startGateway({
      AUTH_SERVICE_URL: auth.stub.url,
      SHUTDOWN_DELAY_MS: '800',
      SHUTDOWN_TIMEOUT_MS: '5000',
    });
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    await httpRequest(`${gateway.url}/api/auth/warm`, { agent: keepAlive });
    const started = Date.now();
    const inFlight = httpRequest(`${gateway.url}/api/auth/delay?ms=1500`);
    await auth.stub.waitFor((r) => r.url === '/api/auth/delay?ms=1500');
    const exited = once(gateway.child, 'exit');
    gateway.child.kill('SIGTERM');
    await sleep(100);

    const health = await httpRequest(`${gateway.url}/health`);
    expect(health.status).toBe(503);
    expect(health.json()).toMatchObject({ status: 'draining' });
    expect((await httpRequest(`${gateway.url}/heartbeat`)).status).toBe(200);
    // A keep-alive client is served, and told to close its connection.
    const during = await httpRequest(`${gateway.url}/api/auth/during`, { agent: keepAlive });
    expect(during.status).toBe(200);
    expect(during.headers.connection).toBe('close');

    await sleep(900);
    await expect(httpRequest(`${gateway.url}/heartbeat`)).rejects.toThrow(/ECONNREFUSED/);

    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({ url: '/api/auth/delay?ms=1500' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    const [code] = await exited;
    expect(code).toBe(0);
    keepAlive.destroy();
  });

  it('cuts what is still open at SHUTDOWN_TIMEOUT_MS and still exits 0', async () => {
    const gateway = await startGateway({
      AUTH_SERVICE_URL: auth.stub.url,
      SHUTDOWN_TIMEOUT_MS: '500',
    });
    const stream = httpRequest(`${gateway.url}/api/auth/sse?count=100&intervalMs=200`);
    await auth.stub.waitFor((r) => r.url.startsWith('/api/auth/sse'));
    const exited = once(gateway.child, 'exit');
    const signalled = Date.now();
    gateway.child.kill('SIGTERM');
    await expect(stream).rejects.toThrow();
    const [code] = await exited;
    expect(code).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(3000);
  });

  it('exits at once on a second signal', async () => {
    const gateway = await startGateway({
      AUTH_SERVICE_URL: auth.stub.url,
      SHUTDOWN_DELAY_MS: '10000',
    });
    const exited = once(gateway.child, 'exit');
    gateway.child.kill('SIGTERM');
    await sleep(200);
    const signalled = Date.now();
    gateway.child.kill('SIGINT');
    const [code] = await exited;
    expect(code).toBe(1);
    expect(Date.now() - signalled).toBeLessThan(1000);
  });
});
