import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import {
  type GatewayProcess,
  httpRequest,
  type HttpResult,
  startGateway,
  startStubUpstream,
  type StubUpstream,
} from '@helix/shared-testing';

// A .solo. suite runs alone, after the others (project.json): its burst of load takes both
// cores for 4 s, which would starve the timing-sensitive suites beside it.
describe('process overload shedding (OVERLOAD_MAX_EVENT_LOOP_DELAY_MS)', () => {
  let stub: StubUpstream;
  let gateway: GatewayProcess;

  beforeAll(async () => {
    stub = await startStubUpstream({ name: 'auth' });
    gateway = await startGateway({
      AUTH_SERVICE_URL: stub.url,
      OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '1',
      HEALTH_CHECK_INTERVAL_MS: '200',
    });
  });

  afterAll(async () => {
    await gateway?.stop();
    await stub?.close();
  });

  it('sheds proxied requests with 503 under a burst of load, keeps /heartbeat 200, and /health goes 503 overloaded and back', async () => {
    // At 1 ms, a machine busy with other suites may tip even an idle gateway: start from calm.
    let idle = await httpRequest(`${gateway.url}/health`);
    for (let i = 0; i < 30 && idle.status !== 200; i++) {
      await sleep(100);
      idle = await httpRequest(`${gateway.url}/health`);
    }
    expect(idle.status).toBe(200);
    expect(idle.json()).not.toHaveProperty('overloaded');

    const load = autocannon({
      url: `${gateway.url}/api/auth/load`,
      connections: 100,
      duration: 4,
    });
    let health: HttpResult | undefined;
    let heartbeat: HttpResult | undefined;
    let shedSeen: HttpResult | undefined;
    for (let i = 0; i < 30 && (!health || !shedSeen); i++) {
      await sleep(100);
      const [h, b, p] = await Promise.all([
        httpRequest(`${gateway.url}/health`),
        httpRequest(`${gateway.url}/heartbeat`),
        httpRequest(`${gateway.url}/api/auth/probe`),
      ]);
      expect(b.status).toBe(200);
      heartbeat = b;
      if (h.status === 503) health = h;
      if (p.status === 503) shedSeen = p;
    }
    const result = await load;
    expect(heartbeat?.status).toBe(200);
    expect(health?.json()).toMatchObject({ status: 'overloaded', overloaded: true });
    expect(shedSeen?.headers['retry-after']).toBe('1');
    expect(shedSeen?.json()).toMatchObject({
      statusCode: 503,
      message: 'The gateway is overloaded; try again shortly',
    });
    expect(result.non2xx).toBeGreaterThan(0);
    expect(gateway.output()).toContain('overloaded: event loop delay');

    // Without load the delay falls and, after the hysteresis, the gateway is back.
    let recovered: HttpResult | undefined;
    for (let i = 0; i < 50 && recovered?.status !== 200; i++) {
      await sleep(100);
      recovered = await httpRequest(`${gateway.url}/health`);
    }
    expect(recovered?.status).toBe(200);
    expect((await httpRequest(`${gateway.url}/api/auth/after`)).status).toBe(200);
    expect(gateway.output()).toContain('recovered: event loop delay');
  }, 30_000);
});
