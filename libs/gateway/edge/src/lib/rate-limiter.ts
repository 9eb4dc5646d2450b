import type { ThrottlerStorage } from '@nestjs/throttler';

/** The outcome of counting one request, with what the RateLimit-* headers say. */
export interface RateLimitDecision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  /** Seconds until the whole quota is back (RateLimit-Reset). */
  readonly resetSeconds: number;
  /** Seconds until one more request would be admitted (Retry-After of a refusal). */
  readonly retryAfterSeconds: number;
}

/** A key's state: its theoretical arrival time (GCRA), and what the shared storage has yet to hear. */
interface Cell {
  /** Epoch ms at which the key's bucket is empty again (GCRA's TAT). */
  tat: number;
  /** Hits sent to the shared storage and not yet answered. */
  pending: number;
}

/** Hears about the shared storage going away and coming back, once per change. */
export interface StorageStateListener {
  (available: boolean, error?: unknown): void;
}

/**
 * A shared storage's answer: the ThrottlerStorage record, with the key's theoretical arrival
 * time after the hit, on the storage's clock, and that clock's now (see GcraRedisStorage).
 */
export interface GcraRecord {
  readonly totalHits: number;
  readonly timeToExpire: number;
  readonly isBlocked: boolean;
  readonly timeToBlockExpire: number;
  readonly tat?: number;
  readonly now?: number;
}

/**
 * A rate limiter by GCRA, the generic cell rate algorithm (ITU-T I.371; Redis-Cell, Stripe,
 * Envoy's token bucket behave alike): `limit` requests per `windowMs`, one every
 * `windowMs / limit` on average, with a burst of up to `limit`. Unlike a fixed window it has no
 * edge to spend the limit twice across: a client that spent its limit just before any moment
 * gets back only what the rate has refilled since, so at most `limit + limit × Δ / windowMs` in any
 * span Δ (limit 20 per 2 s: 1 hit, then 19 at 1.85 s, then 20 at 2.15 s admits 24, not 40).
 *
 * The decision is synchronous, from local state alone: nothing is awaited on the request path.
 * With a shared ThrottlerStorage (Redis), each admitted hit is also sent to it in the
 * background and every answer refreshes the local view of the shared state; while the storage
 * fails, counting carries on locally (fail open).
 */
export class RateLimiter {
  private readonly cells = new Map<string, Cell>();
  private readonly emissionMs: number;
  private storageAvailable = true;

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    private readonly storage?: ThrottlerStorage,
    private readonly onStorageState?: StorageStateListener,
    private readonly name = 'gateway',
  ) {
    this.emissionMs = windowMs / limit;
  }

  /** Counts one request for `key` and decides at once. */
  hit(key: string, now = Date.now()): RateLimitDecision {
    let cell = this.cells.get(key);
    if (cell === undefined) {
      cell = { tat: now, pending: 0 };
      this.cells.set(key, cell);
    }
    const tat = Math.max(cell.tat, now);
    // The burst tolerance: a full bucket holds `limit` hits, the next one `emissionMs` later.
    const tolerance = this.windowMs - this.emissionMs;
    if (tat - now > tolerance) {
      return {
        allowed: false,
        limit: this.limit,
        remaining: 0,
        resetSeconds: seconds(tat - now),
        retryAfterSeconds: seconds(tat - tolerance - now),
      };
    }
    cell.tat = tat + this.emissionMs;
    if (this.storage) {
      cell.pending++;
      this.share(key, cell);
    }
    const remaining = Math.floor((this.windowMs - (cell.tat - now)) / this.emissionMs + 1e-9);
    return {
      allowed: true,
      limit: this.limit,
      remaining: Math.max(0, Math.min(this.limit, remaining)),
      resetSeconds: seconds(cell.tat - now),
      retryAfterSeconds: 0,
    };
  }

  /** Forgets keys whose bucket is empty; call it now and then to bound memory. */
  sweep(now = Date.now()): void {
    for (const [key, cell] of this.cells) {
      if (cell.tat <= now && cell.pending === 0) this.cells.delete(key);
    }
  }

  private share(key: string, cell: Cell): void {
    (this.storage as ThrottlerStorage)
      .increment(key, this.windowMs, this.limit, this.windowMs, this.name)
      .then(
        (record: GcraRecord) => {
          cell.pending--;
          // Answers come back in order on one connection: the latest holds every instance's
          // hits up to this one; the hits still unanswered are added on top.
          if (record.tat !== undefined && record.now !== undefined) {
            const shared = Date.now() + (record.tat - record.now);
            cell.tat = Math.max(cell.tat, shared + cell.pending * this.emissionMs);
          }
          this.setStorageState(true);
        },
        (err: unknown) => {
          cell.pending--;
          this.setStorageState(false, err);
        },
      );
  }

  private setStorageState(available: boolean, error?: unknown): void {
    if (available === this.storageAvailable) return;
    this.storageAvailable = available;
    this.onStorageState?.(available, error);
  }
}

function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
