import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { GatewayMetrics, UpstreamFailureNote } from '@helix/gateway-observability';

/** One upstream instance as the status page shows it (the metrics port may show addresses). */
export interface InstanceStatus {
  readonly instance: number;
  /** `host:port` the instance is reached at. */
  readonly address: string;
  readonly health: 'up' | 'down' | 'unknown';
  readonly ejected: boolean;
  readonly inFlight: number;
  /** Connect errors, resets, timeouts and 5xx in a row (what outlier detection counts). */
  readonly failuresInARow: number;
}

export interface ServiceStatus {
  readonly name: string;
  readonly instances: readonly InstanceStatus[];
}

/** What a process knows now that is not a metric: its route table, instances and state. */
export interface LiveState {
  readonly version: string;
  readonly draining: boolean;
  readonly overloaded: boolean;
  readonly routes: readonly { readonly prefix: string; readonly service: string }[];
  readonly services: readonly ServiceStatus[];
}

/** A process's contribution to the status page, taken once a second off the request path. */
export interface ProcessReading {
  readonly live: LiveState;
  readonly failures: readonly UpstreamFailureNote[];
  /** The status page's metrics, as `getMetricsAsJSON()` gives them: the books of `/metrics`. */
  readonly metrics: readonly MetricObjectWithValues<MetricValue<string>>[];
}

/** How many failures the page lists; older ones are in the access log. */
export const FAILURES_KEPT = 10;

const NO_LIVE_STATE: LiveState = {
  version: 'unknown',
  draining: false,
  overloaded: false,
  routes: [],
  services: [],
};

/**
 * One process's side of the status page: the live state its owner (the health lib, which
 * sees the route table, the drain and the overload monitor) hands it, the last upstream
 * failures, and the metrics the page is drawn from. Figures are never counted twice: they are
 * read from the same prom-client metrics `/metrics` serves.
 */
export class StatusBoard {
  private readLive: () => LiveState = () => NO_LIVE_STATE;
  private readonly failures: UpstreamFailureNote[] = [];

  constructor(private readonly metrics: GatewayMetrics) {}

  /** Where the live state is read at each sample. */
  useLiveState(read: () => LiveState): void {
    this.readLive = read;
  }

  /** Keeps the last FAILURES_KEPT failures; a push and, when full, a shift of ten. */
  noteFailure(note: UpstreamFailureNote): void {
    if (this.failures.length === FAILURES_KEPT) this.failures.shift();
    this.failures.push(note);
  }

  async read(): Promise<ProcessReading> {
    const m = this.metrics;
    const metrics = await Promise.all([
      m.requests.get(),
      m.requestDuration.get(),
      m.upstreamErrors.get(),
      m.inFlight.get(),
    ]);
    return { live: this.readLive(), failures: [...this.failures], metrics };
  }
}
