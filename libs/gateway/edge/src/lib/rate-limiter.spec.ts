import type { ThrottlerStorage } from '@nestjs/throttler';
import { type GcraRecord, RateLimiter } from './rate-limiter';

/**
 * A storage that answers when told to, like a remote one, and keeps one shared GCRA state per
 * key as GcraRedisStorage's script does in Redis.
 */
class DeferredStorage implements ThrottlerStorage {
  total = 0;
  fail = false;
  readonly waiting: (() => void)[] = [];
  private readonly tats = new Map<string, number>();

  increment(key: string, ttl: number, limit: number): Promise<GcraRecord> {
    this.total++;
    const now = Date.now();
    const tat = Math.max(this.tats.get(key) ?? now, now) + ttl / limit;
    this.tats.set(key, tat);
    return new Promise((resolve, reject) => {
      this.waiting.push(() =>
        this.fail
          ? reject(new Error('connection lost'))
          : resolve({
              totalHits: Math.ceil(((tat - now) * limit) / ttl),
              timeToExpire: Math.ceil((tat - now) / 1000),
              isBlocked: false,
              timeToBlockExpire: 0,
              tat,
              now,
            }),
      );
    });
  }

  async answerAll(): Promise<void> {
    this.waiting.splice(0).forEach((answer) => answer());
    await new Promise((r) => setImmediate(r));
  }
}

describe('RateLimiter', () => {
  it('admits a burst of the limit, then one request per windowMs / limit (GCRA)', () => {
    // 3 per 9 s: a full bucket of 3, refilled one every 3 s.
    const limiter = new RateLimiter(3, 9_000);
    const now = 1_000_000;
    expect([1, 2, 3].map(() => limiter.hit('ip', now))).toEqual([
      { allowed: true, limit: 3, remaining: 2, resetSeconds: 3, retryAfterSeconds: 0 },
      { allowed: true, limit: 3, remaining: 1, resetSeconds: 6, retryAfterSeconds: 0 },
      { allowed: true, limit: 3, remaining: 0, resetSeconds: 9, retryAfterSeconds: 0 },
    ]);
    expect(limiter.hit('ip', now + 1_000)).toEqual({
      allowed: false,
      limit: 3,
      remaining: 0,
      resetSeconds: 8,
      retryAfterSeconds: 2,
    });
    expect(limiter.hit('other', now).allowed).toBe(true);
    // 3 s later one slot has come back, and only one.
    expect(limiter.hit('ip', now + 3_000)).toMatchObject({ allowed: true, remaining: 0 });
    expect(limiter.hit('ip', now + 3_000).allowed).toBe(false);
    // A bucket left alone for a whole window is full again.
    expect(limiter.hit('ip', now + 12_000)).toMatchObject({ allowed: true, remaining: 2 });
  });

  it('gives no double burst at a window edge: limit 20 per 2 s, 1 + 19 at 1.85 s + 20 at 2.15 s admits 24', () => {
    const limiter = new RateLimiter(20, 2_000);
    const t0 = 5_000_000;
    const admitted = (at: number, count: number) =>
      Array.from({ length: count }, () => limiter.hit('ip', at)).filter((d) => d.allowed).length;
    expect(admitted(t0, 1)).toBe(1);
    expect(admitted(t0 + 1_850, 19)).toBe(19);
    // A fixed window would admit all 20 again; GCRA only what the rate refilled (0.3 s = 3) and one more.
    expect(admitted(t0 + 2_150, 20)).toBe(4);
  });

  it('decides without waiting for the shared storage, counting what is in flight', async () => {
    const storage = new DeferredStorage();
    const limiter = new RateLimiter(2, 60_000, storage);
    expect(limiter.hit('ip').allowed).toBe(true);
    expect(limiter.hit('ip').allowed).toBe(true);
    expect(limiter.hit('ip').allowed).toBe(false);
    expect(storage.total).toBe(2);
    await storage.answerAll();
    expect(limiter.hit('ip').allowed).toBe(false);
  });

  it('refreshes its view from the shared count other instances raised', async () => {
    const storage = new DeferredStorage();
    const a = new RateLimiter(5, 60_000, storage);
    const b = new RateLimiter(5, 60_000, storage);
    for (let i = 0; i < 3; i++) expect(a.hit('ip').allowed).toBe(true);
    await storage.answerAll();
    expect(b.hit('ip')).toMatchObject({ allowed: true, remaining: 4 });
    await storage.answerAll();
    // b now knows the shared total is 4: one hit left.
    expect(b.hit('ip')).toMatchObject({ allowed: true, remaining: 0 });
    await storage.answerAll();
    expect(b.hit('ip').allowed).toBe(false);
  });

  it('fails open to local counting and reports each storage state change once', async () => {
    const storage = new DeferredStorage();
    const states: boolean[] = [];
    const limiter = new RateLimiter(3, 60_000, storage, (available) => states.push(available));
    storage.fail = true;
    limiter.hit('ip');
    limiter.hit('ip');
    await storage.answerAll();
    expect(states).toEqual([false]);
    expect(limiter.hit('ip').allowed).toBe(true);
    storage.fail = false;
    await storage.answerAll();
    expect(states).toEqual([false, true]);
  });

  it('forgets keys whose bucket has emptied on sweep', () => {
    const limiter = new RateLimiter(1, 1000);
    limiter.hit('ip', 0);
    expect(limiter.hit('ip', 500).allowed).toBe(false);
    limiter.sweep(999);
    expect(limiter.hit('ip', 500).allowed).toBe(false);
    limiter.sweep(1000);
    // Forgotten: a hit dated before the sweep finds a fresh bucket.
    expect(limiter.hit('ip', 999).allowed).toBe(true);
  });
});
