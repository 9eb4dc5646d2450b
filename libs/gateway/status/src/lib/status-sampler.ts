import {
  AggregatorRegistry,
  type MetricValue,
  type Registry,
  type RegistryContentType,
} from 'prom-client';
import type { UpstreamFailureNote } from '@helix/gateway-observability';
import type { InstanceStatus, LiveState, ProcessReading, ServiceStatus } from './status-board';
import { FAILURES_KEPT } from './status-board';
import { type Buckets, bucketsBetween, PointRing, quantile } from './status-series';

/** One point a second for 15 minutes, per route. */
export const SERIES_SECONDS = 15 * 60;
/** The table's request rate is the mean of the last 10 s; its error rate and latency, 60 s. */
const RATE_WINDOW_MS = 10_000;
const LATENCY_WINDOW_MS = 60_000;
const SAMPLE_MS = 1000;

const SERIES = ['rps', 'errorRate', 'p99Ms'] as const;
type SeriesName = (typeof SERIES)[number];

interface RouteTotals {
  requests: number;
  errors: number;
  buckets: Buckets;
}

/** Cumulative figures at one sample: what the counters said, by route prefix. */
interface Totals {
  readonly at: number;
  readonly routes: ReadonlyMap<string, RouteTotals>;
}

export interface RouteStatus {
  readonly prefix: string;
  readonly service: string;
  /** Requests answered since start (every worker's, added up). */
  readonly requests: number;
  /** Of those, answered 5xx (upstream failures included: refused 502, timeout 504, down 503). */
  readonly errors: number;
  /** Requests a second over the last 10 s. */
  readonly reqRate: number | null;
  /** Share of 5xx over the last minute, 0…1. */
  readonly errorRate: number | null;
  /** Latency over the last minute, from the request duration histogram. */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
}

export interface ServiceSummary extends ServiceStatus {
  readonly inFlight: number;
  /** Failed upstream exchanges since start, by helix_gateway_upstream_errors_total. */
  readonly failures: number;
}

/** What `/status.json` and each update of the page carry. */
export interface StatusState {
  readonly gateway: {
    readonly version: string;
    readonly uptimeS: number;
    readonly workers: number;
    readonly inFlight: number;
    readonly draining: boolean;
    readonly overloaded: boolean;
  };
  /** Epoch milliseconds of the sample. */
  readonly sampledAt: number;
  readonly routes: readonly RouteStatus[];
  readonly services: readonly ServiceSummary[];
  /** The last upstream failures, newest first. */
  readonly failures: readonly UpstreamFailureNote[];
}

export type RouteSeries = { t: number[] } & Record<SeriesName, (number | null)[]>;

/** The state with the 15-minute series of every route, as a page that just opened needs it. */
export interface StatusSnapshot extends StatusState {
  readonly series: Record<string, RouteSeries>;
}

/** The state with the one point each route gained at `sampledAt`: [req/s, error rate, p99 ms]. */
export interface StatusTick extends StatusState {
  readonly point: Record<string, [number | null, number | null, number | null]>;
}

type Values = readonly MetricValue<string>[];

function valuesOf(registry: Registry<RegistryContentType>) {
  return async (name: string): Promise<Values> => {
    const metric = registry.getSingleMetric(name);
    return metric ? (await metric.get()).values : [];
  };
}

/** Each route's cumulative requests, 5xx and duration buckets, summed over method and class. */
function routeTotals(requests: Values, durations: Values): Map<string, RouteTotals> {
  const routes = new Map<string, RouteTotals>();
  const totalsOf = (route: string) => {
    let totals = routes.get(route);
    if (!totals) routes.set(route, (totals = { requests: 0, errors: 0, buckets: emptyBuckets() }));
    return totals;
  };
  for (const { labels, value } of requests) {
    const totals = totalsOf(String(labels.route));
    totals.requests += value;
    if (labels.status_class === '5xx') totals.errors += value;
  }
  const byRoute = new Map<string, Map<number, number>>();
  for (const v of durations as readonly (MetricValue<string> & { metricName?: string })[]) {
    if (!v.metricName?.endsWith('_bucket')) continue;
    const route = String(v.labels.route);
    const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
    let counts = byRoute.get(route);
    if (!counts) byRoute.set(route, (counts = new Map()));
    counts.set(le, (counts.get(le) ?? 0) + v.value);
  }
  for (const [route, counts] of byRoute) {
    const bounds = [...counts.keys()].sort((a, b) => a - b);
    totalsOf(route).buckets = { bounds, counts: bounds.map((b) => counts.get(b) ?? 0) };
  }
  return routes;
}

function emptyBuckets(): Buckets {
  return { bounds: [Infinity], counts: [0] };
}

/** Instances as every worker sees them: in flight added up, the worst health and ejection. */
function mergeServices(readings: readonly ProcessReading[]): ServiceStatus[] {
  const merged = new Map<string, Map<number, InstanceStatus>>();
  for (const { live } of readings) {
    for (const service of live.services) {
      let instances = merged.get(service.name);
      if (!instances) merged.set(service.name, (instances = new Map()));
      for (const i of service.instances) {
        const seen = instances.get(i.instance);
        instances.set(
          i.instance,
          seen
            ? {
                ...seen,
                health: worse(seen.health, i.health),
                ejected: seen.ejected || i.ejected,
                inFlight: seen.inFlight + i.inFlight,
                failuresInARow: Math.max(seen.failuresInARow, i.failuresInARow),
              }
            : i,
        );
      }
    }
  }
  return [...merged].map(([name, instances]) => ({ name, instances: [...instances.values()] }));
}

function worse(a: InstanceStatus['health'], b: InstanceStatus['health']): InstanceStatus['health'] {
  if (a === 'down' || b === 'down') return 'down';
  return a === 'up' || b === 'up' ? 'up' : 'unknown';
}

function rate(count: number, ms: number): number | null {
  return ms > 0 ? (count * 1000) / ms : null;
}

function ms(seconds: number | undefined): number | null {
  return seconds === undefined ? null : Math.round(seconds * 1e6) / 1e3;
}

/**
 * Samples the gateway once a second, off the request path: reads the processes' metrics (one
 * process, or every worker, added up as the primary's `/metrics` adds them), keeps the last
 * minute of cumulative readings for the table and a 15-minute ring of points per route for
 * the charts, and tells its subscribers (the page's event streams) about each new sample.
 */
export class StatusSampler {
  private readonly totals: Totals[] = [];
  private readonly series = new Map<string, PointRing<SeriesName>>();
  private readonly listeners = new Set<(tick: StatusTick) => void>();
  private state: StatusState | undefined;
  private timer: NodeJS.Timeout | undefined;
  private sampling = false;

  constructor(
    private readonly read: () => Promise<readonly ProcessReading[]>,
    private readonly onError: (err: Error) => void,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.listeners.clear();
  }

  /** Calls `listener` after every sample until the returned function is called. */
  subscribe(listener: (tick: StatusTick) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  snapshot(): StatusSnapshot | undefined {
    if (!this.state) return undefined;
    const series: Record<string, RouteSeries> = {};
    for (const [prefix, ring] of this.series) series[prefix] = ring.toJSON();
    return { ...this.state, series };
  }

  /** Takes one sample now. The timer calls it; a spec may call it with its own clock. */
  async sample(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      const readings = await this.read();
      if (readings.length === 0) return;
      const tick = await this.absorb(readings);
      for (const listener of this.listeners) listener(tick);
    } catch (err) {
      this.onError(err as Error);
    } finally {
      this.sampling = false;
    }
  }

  private async absorb(readings: readonly ProcessReading[]): Promise<StatusTick> {
    const at = this.now();
    const registry = AggregatorRegistry.aggregate(readings.map((r) => r.metrics));
    const values = valuesOf(registry);
    const [requests, durations, upstreamErrors, inFlight] = await Promise.all([
      values('helix_gateway_requests_total'),
      values('helix_gateway_request_duration_seconds'),
      values('helix_gateway_upstream_errors_total'),
      values('helix_gateway_requests_in_flight'),
    ]);
    const current: Totals = { at, routes: routeTotals(requests, durations) };
    const previous = this.totals[this.totals.length - 1];
    while (this.totals.length > 0 && this.totals[0].at < at - LATENCY_WINDOW_MS)
      this.totals.shift();
    const minuteAgo = this.totals[0];
    const tenAgo = [...this.totals].reverse().find((t) => t.at <= at - RATE_WINDOW_MS) ?? minuteAgo;
    this.totals.push(current);

    const live: LiveState = readings[0].live;
    const point: StatusTick['point'] = {};
    const routes = live.routes.map(({ prefix, service }): RouteStatus => {
      const now = current.routes.get(prefix) ?? { requests: 0, errors: 0, buckets: emptyBuckets() };
      const before = previous?.routes.get(prefix);
      if (previous) {
        const count = now.requests - (before?.requests ?? 0);
        const values = {
          rps: rate(Math.max(0, count), at - previous.at) ?? undefined,
          errorRate:
            count > 0 ? Math.max(0, now.errors - (before?.errors ?? 0)) / count : undefined,
          p99Ms: ms(quantile(0.99, bucketsBetween(before?.buckets, now.buckets))) ?? undefined,
        };
        this.ring(prefix).push(at, values);
        point[prefix] = [values.rps ?? null, values.errorRate ?? null, values.p99Ms ?? null];
      }
      const tenBefore = tenAgo?.routes.get(prefix);
      const minuteBefore = minuteAgo?.routes.get(prefix);
      const inMinute = now.requests - (minuteBefore?.requests ?? 0);
      const latency = bucketsBetween(minuteBefore?.buckets, now.buckets);
      return {
        prefix,
        service,
        requests: now.requests,
        errors: now.errors,
        reqRate: tenAgo
          ? rate(Math.max(0, now.requests - (tenBefore?.requests ?? 0)), at - tenAgo.at)
          : null,
        errorRate:
          inMinute > 0 ? Math.max(0, now.errors - (minuteBefore?.errors ?? 0)) / inMinute : null,
        p50Ms: ms(quantile(0.5, latency)),
        p99Ms: ms(quantile(0.99, latency)),
      };
    });
    // A route gone from the table (hot reload) takes its ring with it: memory stays bounded.
    for (const prefix of this.series.keys()) {
      if (!live.routes.some((r) => r.prefix === prefix)) this.series.delete(prefix);
    }

    const failuresBy = new Map<string, number>();
    for (const { labels, value } of upstreamErrors) {
      const service = String(labels.service);
      failuresBy.set(service, (failuresBy.get(service) ?? 0) + value);
    }
    const services = mergeServices(readings).map((s): ServiceSummary => ({
      ...s,
      inFlight: s.instances.reduce((sum, i) => sum + i.inFlight, 0),
      failures: failuresBy.get(s.name) ?? 0,
    }));
    const failures = readings
      .flatMap((r) => r.failures)
      .sort((a, b) => b.time - a.time)
      .slice(0, FAILURES_KEPT);

    this.state = {
      gateway: {
        version: live.version,
        uptimeS: Math.round(process.uptime()),
        workers: readings.length,
        inFlight: inFlight.reduce((sum, v) => sum + v.value, 0),
        draining: readings.some((r) => r.live.draining),
        overloaded: readings.some((r) => r.live.overloaded),
      },
      sampledAt: at,
      routes,
      services,
      failures,
    };
    return { ...this.state, point };
  }

  private ring(prefix: string): PointRing<SeriesName> {
    let ring = this.series.get(prefix);
    if (!ring) this.series.set(prefix, (ring = new PointRing(SERIES_SECONDS, SERIES)));
    return ring;
  }
}
