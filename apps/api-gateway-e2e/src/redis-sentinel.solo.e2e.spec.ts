import { setTimeout as sleep } from 'node:timers/promises';
import {
  type GatewayProcess,
  httpRequest,
  startGateway,
  startStubUpstream,
  type StubUpstream,
} from '@helix/shared-testing';
import {
  describeWith,
  REDIS_SENTINEL,
  type SentinelCluster,
  startSentinelCluster,
} from './real-deps';

const LIMIT = 20;
/**
 * The bound this suite holds the gateway to, from the primary's death to limits shared again:
 * about 3.3 s here (the Sentinels' 1 s down-after, their election, ioredis' reconnect).
 */
const SHARED_AGAIN_WITHIN_MS = 10_000;

describeWith(REDIS_SENTINEL, 'rate limits through Redis Sentinel, across a failover', () => {
  let cluster: SentinelCluster;
  let stub: StubUpstream;
  let gateways: GatewayProcess[];

  beforeAll(async () => {
    [cluster, stub] = await Promise.all([
      startSentinelCluster(),
      startStubUpstream({ name: 'auth' }),
    ]);
    const env = {
      AUTH_SERVICE_URL: stub.url,
      REDIS_SENTINELS: cluster.sentinels,
      REDIS_SENTINEL_NAME: cluster.name,
      RATE_LIMIT_MAX: String(LIMIT),
      RATE_LIMIT_WINDOW_MS: '60000',
    };
    gateways = await Promise.all([startGateway(env), startGateway(env)]);
    for (const gw of gateways) {
      for (let i = 0; i < 50 && !gw.output().includes('Redis is back'); i++) {
        if (!gw.output().includes('unavailable')) break;
        await sleep(100);
      }
    }
  });

  afterAll(async () => {
    await Promise.all(gateways?.map((gw) => gw.stop()) ?? []);
    await stub?.close();
    await cluster?.stop();
  });

  /**
   * Shared: the two gateways together admit the limit, plus at most the one hit in flight to
   * Redis while the other gateway decides (the decision never waits on Redis; README). Counted
   * apart, they would admit twice the limit.
   */
  function expectShared(admitted: number): void {
    expect(admitted).toBeGreaterThanOrEqual(LIMIT);
    expect(admitted).toBeLessThanOrEqual(LIMIT + 1);
  }

  /** LIMIT × 2 requests of one client, alternating between the gateways: how many got in. */
  async function admittedOf(client: string): Promise<number> {
    let admitted = 0;
    for (let i = 0; i < 2 * LIMIT; i++) {
      const res = await httpRequest(`${gateways[i % 2].url}/api/auth/x`, { localAddress: client });
      if (res.status === 200) admitted++;
      else expect(res.status).toBe(429);
    }
    return admitted;
  }

  it('shares the limit through the primary the Sentinels name', async () => {
    expectShared(await admittedOf('127.0.0.50'));
  });

  it('keeps serving while the primary dies, follows the promotion, and shares again within the bound', async () => {
    // Load from many clients, each far under the limit: every answer must be a 200.
    let stop = false;
    const statuses: number[] = [];
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        const client = `127.0.1.${(i % 200) + 1}`;
        const res = await httpRequest(`${gateways[i % 2].url}/api/auth/x`, {
          localAddress: client,
        });
        statuses.push(res.status);
        await sleep(10);
      }
    })();
    await sleep(500);
    const before = gateways.map((gw) => gw.output().length);
    const killedAt = Date.now();
    await cluster.killPrimary();
    // Each gateway first fails open (counts locally), then finds the promoted replica.
    for (const [index, gw] of gateways.entries()) {
      const since = () => gw.output().slice(before[index]);
      while (!/Redis is unavailable[\s\S]*Redis is back/.test(since())) {
        if (Date.now() - killedAt > SHARED_AGAIN_WITHIN_MS) {
          throw new Error(`not shared again within ${SHARED_AGAIN_WITHIN_MS} ms:\n${since()}`);
        }
        await sleep(50);
      }
    }
    await sleep(300);
    stop = true;
    await load;
    expect(statuses.length).toBeGreaterThan(50);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    for (const gw of gateways) {
      expect(gw.output()).toMatch(/Redis is unavailable, counting rate limits locally/);
      expect(gw.output()).not.toMatch(/unhandled|UnhandledPromiseRejection/i);
      expect(gw.child.exitCode).toBeNull();
    }
    // Shared again, on the promoted replica.
    expectShared(await admittedOf('127.0.0.51'));
  });
});
