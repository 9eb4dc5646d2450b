import { setTimeout as sleep } from 'node:timers/promises';
import {
  type GatewayProcess,
  httpRequest,
  startGateway,
  startStubUpstream,
  type StubUpstream,
} from '@helix/shared-testing';
import { describeWith, REDIS_SERVER, type RedisServer, startRedis } from './real-deps';

const LIMIT = 20;

/** A real Redis, one stub and two gateways sharing a limit through it, for one suite. */
interface SharedLimit {
  redis: RedisServer;
  stub: StubUpstream;
  a: GatewayProcess;
  b: GatewayProcess;
}

/**
 * Starts the suite's Redis, stub and two gateways with LIMIT per `windowMs`, and waits until
 * both share: on a busy machine ioredis may connect after the gateway's 1 s wait, and until
 * then it counts locally (a warm-up client from 127.0.0.29 shows when it is back).
 */
function useSharedLimit(windowMs: number): SharedLimit {
  const f = {} as SharedLimit;
  beforeAll(async () => {
    [f.redis, f.stub] = await Promise.all([startRedis(), startStubUpstream({ name: 'auth' })]);
    const env = {
      AUTH_SERVICE_URL: f.stub.url,
      REDIS_URL: f.redis.url,
      RATE_LIMIT_MAX: String(LIMIT),
      RATE_LIMIT_WINDOW_MS: String(windowMs),
    };
    [f.a, f.b] = await Promise.all([startGateway(env), startGateway(env)]);
    for (const gw of [f.a, f.b]) {
      for (let i = 0; i < 50; i++) {
        const out = gw.output();
        if (!out.includes('unavailable at start-up') || out.includes('Redis is back')) break;
        await httpRequest(`${gw.url}/api/auth/warm-up`, { localAddress: '127.0.0.29' });
        await sleep(100);
      }
    }
  });
  afterAll(async () => {
    await Promise.all([f.a?.stop(), f.b?.stop()]);
    await f.stub?.close();
    await f.redis?.stop();
  });
  return f;
}

describeWith(REDIS_SERVER, 'rate limits shared through a real Redis', () => {
  const shared = useSharedLimit(60_000);

  // Each test is its own client: a distinct loopback source address is a distinct rate-limit key.
  async function status(gw: GatewayProcess, client: string): Promise<number> {
    return (await httpRequest(`${gw.url}/api/auth/x`, { localAddress: client })).status;
  }

  async function takeTurns(client: string, count: number): Promise<number[]> {
    const statuses: number[] = [];
    for (let i = 0; i < count; i++)
      statuses.push(await status(i % 2 === 0 ? shared.a : shared.b, client));
    return statuses;
  }

  it('holds one limit across two instances taking turns, within the README drift: limit + N - 1', async () => {
    const statuses = await takeTurns('127.0.0.11', 2 * LIMIT);
    const admitted = statuses.filter((s) => s === 200).length;
    process.stdout.write(
      `shared limit, two instances taking turns: admitted ${admitted} of ${2 * LIMIT}, limit ${LIMIT}\n`,
    );
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    expect(admitted).toBeGreaterThanOrEqual(LIMIT);
    expect(admitted).toBeLessThanOrEqual(LIMIT + 1);
  });

  it('stays within the README drift bound for a simultaneous burst: at most N x limit', async () => {
    const statuses = await Promise.all(
      Array.from({ length: 4 * LIMIT }, (_, i) =>
        status(i % 2 === 0 ? shared.a : shared.b, '127.0.0.12'),
      ),
    );
    const admitted = statuses.filter((s) => s === 200).length;
    process.stdout.write(
      `shared limit, burst of ${4 * LIMIT} over two instances: admitted ${admitted}, limit ${LIMIT}\n`,
    );
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    expect(admitted).toBeGreaterThanOrEqual(LIMIT);
    expect(admitted).toBeLessThanOrEqual(2 * LIMIT);
  });

  it('keeps serving with no 5xx while Redis is down, and shares again once it is back', async () => {
    await shared.redis.stop();
    const whileDown = await takeTurns('127.0.0.13', 2 * LIMIT + 4);
    expect(whileDown.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    // Counting locally: each instance admits up to the limit on its own.
    expect(whileDown.filter((s) => s === 200).length).toBe(2 * LIMIT);

    await shared.redis.start();
    // ioredis reconnects by itself (back-off up to 2 s); each instance says so on its first shared hit.
    const bothBack = () =>
      [shared.a, shared.b].every((gw) => gw.output().includes('Redis is back'));
    for (let i = 0; i < 100 && !bothBack(); i++) {
      await status(shared.a, '127.0.0.14');
      await status(shared.b, '127.0.0.14');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(bothBack()).toBe(true);
    const afterRecovery = await takeTurns('127.0.0.15', 2 * LIMIT);
    const admitted = afterRecovery.filter((s) => s === 200).length;
    expect(admitted).toBeGreaterThanOrEqual(LIMIT);
    expect(admitted).toBeLessThanOrEqual(LIMIT + 1);
    for (const gw of [shared.a, shared.b]) {
      expect(gw.output().match(/Redis is unavailable/g)).toHaveLength(1);
      expect(gw.output().match(/Redis is back/g)).toHaveLength(1);
      expect(gw.output()).not.toMatch(/Unhandled|unhandled/);
      expect(gw.child.exitCode).toBeNull();
    }
  });
});

describeWith(REDIS_SERVER, 'the window edge through a real Redis (GCRA)', () => {
  const shared = useSharedLimit(2000);

  /** `count` requests taking turns over both instances; the statuses and how long it took. */
  async function wave(client: string, count: number): Promise<{ statuses: number[]; ms: number }> {
    const started = Date.now();
    const statuses: number[] = [];
    for (let i = 0; i < count; i++) {
      const gw = i % 2 === 0 ? shared.a : shared.b;
      statuses.push(
        (await httpRequest(`${gw.url}/api/auth/edge`, { localAddress: client })).status,
      );
    }
    return { statuses, ms: Date.now() - started };
  }

  const admitted = (statuses: number[]) => statuses.filter((s) => s === 200).length;

  it('gives no double burst across two instances, and fails open when Redis is killed mid-run', async () => {
    const t0 = Date.now();
    const first = await wave('127.0.0.21', 1);
    await sleep(t0 + 1850 - Date.now());
    const secondAt = Date.now();
    const second = await wave('127.0.0.21', 19);
    // Both instances have heard the shared state back by the time the limit is spent again.
    await sleep(t0 + 2150 - Date.now());
    const third = await wave('127.0.0.21', 20);
    expect([admitted(first.statuses), admitted(second.statuses)]).toEqual([1, 19]);
    // A fixed window admits 20 more. GCRA gives back one slot per 100 ms since the limit was
    // spent (4 at 2.15 s), measured from the waves' real times on a busy machine; traffic spread
    // over N instances adds at most N - 1 that an instance had not heard of yet (README).
    const slots = (since: number) => Math.floor((Date.now() - since) / 100) + 1;
    const bound = slots(secondAt) + 1;
    process.stdout.write(
      `window edge through Redis: admitted ${admitted(third.statuses)} at 2.15 s (bound ${bound}, fixed window 20)\n`,
    );
    expect(admitted(third.statuses)).toBeLessThanOrEqual(bound);

    // Killed mid-run: every request is still answered, 200 or 429, never 5xx, counted locally
    // from what each instance knew.
    await shared.redis.stop();
    const during = await wave('127.0.0.21', 40);
    expect(during.statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    // Each instance then counts alone from what it knew: at most N times the refill.
    expect(admitted(third.statuses) + admitted(during.statuses)).toBeLessThanOrEqual(
      2 * slots(secondAt),
    );
    expect(during.ms).toBeLessThan(2000);
    for (const gw of [shared.a, shared.b]) {
      expect(gw.output()).not.toMatch(/Unhandled|unhandled/);
      expect(gw.child.exitCode).toBeNull();
    }
    await shared.redis.start();
  });
});
