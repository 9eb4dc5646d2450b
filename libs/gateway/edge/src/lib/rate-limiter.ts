import type { ThrottlerStorage } from '@nestjs/throttler';

/** The outcome of counting one request, with what the RateLimit-* headers say. */
export interface RateLimitDecision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  /** Seconds until the window resets. */
  readonly resetSeconds: number;
}

interface Window {
  resetAt: number;
  /** Hits known to count in this window: the shared total from the last answer, plus local ones. */
  hits: number;
  /** Hits sent to the shared storage and not yet answered. */
  pending: number;
}

/** Hears about the shared storage going away and coming back, once per change. */
export interface StorageStateListener {
  (available: boolean, error?: unknown): void;
}

/**
 * A fixed-window limiter whose decision is synchronous, from local state alone: nothing is
 * awaited on the request path. With a shared ThrottlerStorage (Redis), each admitted hit is
 * also sent to it in the background and every answer refreshes the local view of the shared
 * count; while the storage fails, counting carries on locally (fail open).
 */
export class RateLimiter {
  private readonly windows = new Map<string, Window>();
  private storageAvailable = true;

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    private readonly storage?: ThrottlerStorage,
    private readonly onStorageState?: StorageStateListener,
    private readonly name = 'gateway',
  ) {}

  /** Counts one request for `key` and decides at once. */
  hit(key: string, now = Date.now()): RateLimitDecision {
    let window = this.windows.get(key);
    if (window === undefined || window.resetAt <= now) {
      window = { resetAt: now + this.windowMs, hits: 0, pending: 0 };
      this.windows.set(key, window);
    }
    const used = window.hits + window.pending;
    const resetSeconds = Math.max(1, Math.ceil((window.resetAt - now) / 1000));
    if (used >= this.limit) {
      return { allowed: false, limit: this.limit, remaining: 0, resetSeconds };
    }
    if (this.storage) {
      window.pending++;
      this.share(key, window);
    } else {
      window.hits++;
    }
    return { allowed: true, limit: this.limit, remaining: this.limit - used - 1, resetSeconds };
  }

  /** Forgets windows that have ended; call it now and then to bound memory. */
  sweep(now = Date.now()): void {
    for (const [key, window] of this.windows) {
      if (window.resetAt <= now && window.pending === 0) this.windows.delete(key);
    }
  }

  private share(key: string, window: Window): void {
    (this.storage as ThrottlerStorage)
      .increment(key, this.windowMs, this.limit, this.windowMs, this.name)
      .then(
        (record) => {
          window.pending--;
          // Answers come back in order on one connection: the latest is the freshest shared total.
          window.hits = record.totalHits;
          window.resetAt = Date.now() + record.timeToExpire * 1000;
          this.setStorageState(true);
        },
        (err: unknown) => {
          window.pending--;
          window.hits++;
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
