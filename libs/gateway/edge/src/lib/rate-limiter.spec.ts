import type { ThrottlerStorage } from '@nestjs/throttler';

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;
import { RateLimiter } from './rate-limiter';

/** A storage that answers when told to, like a remote one, and counts like Redis's INCR. */
class DeferredStorage implements ThrottlerStorage {
  total = 0;
  fail = false;
  readonly waiting: (() => void)[] = [];

  increment(): Promise<ThrottlerStorageRecord> {
    this.total++;
    const total = this.total;
    return new Promise((resolve, reject) => {
      this.waiting.push(() =>
        this.fail
          ? reject(new Error('connection lost'))
          : resolve({ totalHits: total, timeToExpire: 60, isBlocked: false, timeToBlockExpire: 0 }),
      );
    });
  }

  async answerAll(): Promise<void> {
    this.waiting.splice(0).forEach((answer) => answer());
    await new Promise((r) => setImmediate(r));
  }
}

describe('RateLimiter', () => {
  it('admits up to the limit in a window, then denies with the time to reset', () => {
    const limiter = new RateLimiter(3, 10_000);
    const now = 1_000_000;
    expect([1, 2, 3].map(() => limiter.hit('ip', now))).toEqual([
      { allowed: true, limit: 3, remaining: 2, resetSeconds: 10 },
      { allowed: true, limit: 3, remaining: 1, resetSeconds: 10 },
      { allowed: true, limit: 3, remaining: 0, resetSeconds: 10 },
    ]);
    expect(limiter.hit('ip', now + 2_500)).toEqual({
      allowed: false,
      limit: 3,
      remaining: 0,
      resetSeconds: 8,
    });
    expect(limiter.hit('other', now).allowed).toBe(true);
    expect(limiter.hit('ip', now + 10_000)).toEqual({
      allowed: true,
      limit: 3,
      remaining: 2,
      resetSeconds: 10,
    });
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

  it('forgets ended windows on sweep', () => {
    const limiter = new RateLimiter(1, 1000);
    limiter.hit('ip', 0);
    expect(limiter.hit('ip', 500).allowed).toBe(false);
    limiter.sweep(1000);
    expect(limiter.hit('ip', 999).allowed).toBe(true);
  });
});
