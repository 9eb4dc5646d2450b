import { isIP } from 'node:net';
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

function unbracket(hostname: string): string {
  return hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
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
  /** Every instance, each target's in turn; replaced whole when discovery changes a set. */
  instances: readonly UpstreamInstance[];
  readonly budget: RetryBudget;
  /**
   * The targets whose host names are resolved in the background (`discovery: dns`); until a
   * first answer, each is one instance by its name, as with static discovery.
   */
  readonly discovered: readonly URL[];
  inFlight = 0;
  private next = 0;
  /** Each target's instances, by the target's URL. */
  private readonly byTarget = new Map<string, UpstreamInstance[]>();

  constructor(
    readonly name: string,
    private readonly targets: readonly URL[],
    readonly balance: BalancePolicy,
    private readonly idleTimeoutMs: number,
    private readonly outlier: OutlierPolicy,
    retryBudgetPercent: number,
    readonly maxInFlight: number,
    discovery: 'static' | 'dns' = 'static',
  ) {
    for (const url of targets) {
      this.byTarget.set(url.href, [new UpstreamInstance(url, 0, idleTimeoutMs, outlier, this)]);
    }
    this.instances = this.flatten();
    this.discovered =
      discovery === 'dns' ? targets.filter((url) => isIP(unbracket(url.hostname)) === 0) : [];
    this.budget = new RetryBudget(retryBudgetPercent);
  }

  /**
   * Makes `addresses` the instances of a discovered target: an address new to the set gets an
   * instance of its own (its pools, health and outlier state), one that left gets no new
   * requests and closes its pools once its requests in flight are done, one that stayed keeps
   * its instance and state. Returns how many came and went.
   */
  useAddresses(target: URL, addresses: readonly string[]): { added: number; removed: number } {
    const current = this.byTarget.get(target.href) ?? [];
    const byAddress = new Map(current.map((instance) => [instance.url.hostname, instance]));
    const next: UpstreamInstance[] = [];
    let added = 0;
    for (const address of addresses) {
      const hostname = isIP(address) === 6 ? `[${address}]` : address;
      const kept = byAddress.get(hostname);
      if (kept) {
        byAddress.delete(hostname);
        next.push(kept);
        continue;
      }
      const url = new URL(target.href);
      url.hostname = hostname;
      // The name's Host, without the trailing dot of a fully qualified name.
      const host = target.host.replace(/\.(?=:|$)/, '');
      next.push(new UpstreamInstance(url, 0, this.idleTimeoutMs, this.outlier, this, host));
      added++;
    }
    for (const gone of byAddress.values()) gone.retire();
    this.byTarget.set(target.href, next);
    this.instances = this.flatten();
    return { added, removed: byAddress.size };
  }

  /** Out of the route table: no new requests for any instance; each pool closes when idle. */
  retire(): void {
    for (const instance of this.instances) instance.retire();
  }

  private flatten(): UpstreamInstance[] {
    const all = this.targets.flatMap((url) => this.byTarget.get(url.href) ?? []);
    all.forEach((instance, index) => (instance.index = index));
    this.next = this.next % Math.max(all.length, 1);
    return all;
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
