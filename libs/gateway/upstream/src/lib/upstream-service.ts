import type { ExchangeEndpoint, ExchangeUpstream } from './exchange';
import { type InFlightTotal, type OutlierPolicy, UpstreamInstance } from './upstream-instance';

export type BalancePolicy = 'round-robin' | 'least-in-flight';

const BUDGET_WINDOW_S = 10;
/** Envoy's min_retry_concurrency: a quiet service may still retry a few requests. */
const MIN_RETRIES_PER_WINDOW = 3;

/**
 * Retries may add at most `percent` of the requests of the last ten seconds (Envoy's retry
 * budget), so a failing service is not hit with a storm of them.
 */
export class RetryBudget {
  private readonly requests = new Array<number>(BUDGET_WINDOW_S).fill(0);
  private readonly retries = new Array<number>(BUDGET_WINDOW_S).fill(0);
  private second = 0;

  constructor(private readonly percent: number) {}

  recordRequest(now: number): void {
    this.requests[this.slot(now)]++;
  }

  /** Spends one retry if the budget allows it. */
  tryRetry(now: number): boolean {
    const slot = this.slot(now);
    const requests = sum(this.requests);
    const retries = sum(this.retries);
    if (retries + 1 > Math.max(MIN_RETRIES_PER_WINDOW, (requests * this.percent) / 100))
      return false;
    this.retries[slot]++;
    return true;
  }

  private slot(now: number): number {
    const second = Math.floor(now / 1000);
    if (second !== this.second) {
      // Clear the seconds that passed since the last call, at most the whole window.
      for (let s = Math.max(this.second + 1, second - BUDGET_WINDOW_S + 1); s <= second; s++) {
        this.requests[s % BUDGET_WINDOW_S] = 0;
        this.retries[s % BUDGET_WINDOW_S] = 0;
      }
      this.second = second;
    }
    return second % BUDGET_WINDOW_S;
  }
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}

/**
 * A service and its instances, shared by every route that names it, with its concurrency cap
 * (Envoy's circuit breaker): past `maxInFlight` requests in flight across all its instances,
 * retries and open WebSockets included, a new request is refused before it reaches any.
 */
export class UpstreamService implements ExchangeUpstream, InFlightTotal {
  readonly instances: readonly UpstreamInstance[];
  readonly budget: RetryBudget;
  inFlight = 0;
  private next = 0;

  constructor(
    readonly name: string,
    urls: readonly URL[],
    readonly balance: BalancePolicy,
    idleTimeoutMs: number,
    outlier: OutlierPolicy,
    retryBudgetPercent: number,
    readonly maxInFlight: number,
  ) {
    this.instances = urls.map(
      (url, index) => new UpstreamInstance(url, index, idleTimeoutMs, outlier, this),
    );
    this.budget = new RetryBudget(retryBudgetPercent);
  }

  /** Every slot of the cap is taken: a new request must be refused. */
  atCapacity(): boolean {
    return this.inFlight >= this.maxInFlight;
  }

  /**
   * The instance for the next request, never `avoid` (the one a retry leaves): round-robin or
   * least-in-flight among the available ones. Undefined when none is available: the caller
   * answers 503 at once rather than wait on a connect timeout.
   */
  pick(now: number, avoid?: ExchangeEndpoint): UpstreamInstance | undefined {
    const instances = this.instances;
    const count = instances.length;
    let chosen: UpstreamInstance | undefined;
    for (let k = 0; k < count; k++) {
      const candidate = instances[(this.next + k) % count];
      if (candidate === avoid || !candidate.isAvailable(now)) continue;
      if (this.balance === 'round-robin') {
        chosen = candidate;
        break;
      }
      if (chosen === undefined || candidate.inFlight < chosen.inFlight) chosen = candidate;
    }
    if (chosen === undefined) return undefined;
    // A retry leaves the rotation where it was: the next request still goes past the failed one.
    if (avoid === undefined) this.next = (chosen.index + 1) % count;
    chosen.acquire();
    return chosen;
  }

  /** The service as a whole: up while any instance is, unknown until one has been checked. */
  state(): 'up' | 'down' | 'unknown' {
    let unknown = false;
    for (const instance of this.instances) {
      if (instance.health === 'up') return 'up';
      if (instance.health === 'unknown') unknown = true;
    }
    return unknown ? 'unknown' : 'down';
  }
}
