import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const DURATION_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

const SUFFIXED_GAUGES = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** Bounded label values: a method outside the standard set is OTHER, a status its class. */
export function methodLabel(method: string | undefined): string {
  return method !== undefined && KNOWN_METHODS.has(method) ? method : 'OTHER';
}

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'];

export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? STATUS_CLASSES[Math.floor(status / 100) - 1] : 'other';
}

/** The request counter and duration histogram of one route, method and status class. */
export interface RequestSeries {
  readonly requests: { inc(value?: number): void };
  readonly duration: { observe(value: number): void };
}

/**
 * The gateway's Prometheus metrics, on their own registry. Every label set is bounded: routes
 * are the route table's prefixes (or `gateway`, `unmatched`), never raw paths.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'helix_gateway_requests_total',
    help: 'Requests answered, by route prefix, method and status class.',
    labelNames: ['route', 'method', 'status_class'] as const,
    registers: [this.registry],
  });
  readonly requestDuration = new Histogram({
    name: 'helix_gateway_request_duration_seconds',
    help: 'Time from the request reaching the gateway to the end of its response.',
    labelNames: ['route', 'method', 'status_class'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly upstreamDuration = new Histogram({
    name: 'helix_gateway_upstream_duration_seconds',
    help: "Time from sending a request upstream to the upstream's response head (time to first byte).",
    labelNames: ['service'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly upstreamErrors = new Counter({
    name: 'helix_gateway_upstream_errors_total',
    help: 'Failed upstream exchanges, by service and error code (refused, reset, timeout, ...).',
    labelNames: ['service', 'code'] as const,
    registers: [this.registry],
  });
  readonly retries = new Counter({
    name: 'helix_gateway_retries_total',
    help: 'Requests tried again on another instance after a connect failure, by service.',
    labelNames: ['service'] as const,
    registers: [this.registry],
  });
  readonly upstreamInstanceUp = new Gauge({
    name: 'helix_gateway_upstream_instance_up',
    help: '1 when an instance is in service (checked up or unknown, not ejected), by service and instance index.',
    labelNames: ['service', 'instance'] as const,
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'helix_gateway_rate_limited_total',
    help: 'Requests refused with 429, by route prefix.',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });
  readonly shed = new Counter({
    name: 'helix_gateway_shed_total',
    help: 'Requests refused with 503 before any upstream work, by route prefix and reason (capacity, overload).',
    labelNames: ['route', 'reason'] as const,
    registers: [this.registry],
  });
  private readInFlight: () => Iterable<{ readonly name: string; readonly inFlight: number }> =
    () => [];
  readonly upstreamInFlight = new Gauge({
    name: 'helix_gateway_upstream_in_flight',
    help: 'Requests in flight to each service now, all its instances together (WebSockets included while open).',
    labelNames: ['service'] as const,
    registers: [this.registry],
    collect: () => {
      this.upstreamInFlight.reset();
      for (const { name, inFlight } of this.readInFlight()) {
        this.upstreamInFlight.labels(name).set(inFlight);
      }
    },
  });
  readonly inFlight = new Gauge({
    name: 'helix_gateway_requests_in_flight',
    help: 'Requests being answered now.',
    registers: [this.registry],
  });
  readonly upstreamUp = new Gauge({
    name: 'helix_gateway_upstream_up',
    help: '1 when the background checker last found the service up, 0 when down.',
    labelNames: ['service'] as const,
    registers: [this.registry],
  });
  readonly dnsLookupFailures = new Counter({
    name: 'helix_gateway_dns_lookup_failures_total',
    help: 'Background lookups of a discovered target that failed or found no address (the last set stays).',
    labelNames: ['service'] as const,
    registers: [this.registry],
  });
  readonly upstreamAddresses = new Gauge({
    name: 'helix_gateway_upstream_address_info',
    help: 'The addresses a service reaches (metrics port only): 1 per instance, by service, instance index and address.',
    labelNames: ['service', 'instance', 'address'] as const,
    registers: [this.registry],
  });
  readonly routeReloads = new Counter({
    name: 'helix_gateway_route_reloads_total',
    help: 'Reloads of GATEWAY_ROUTES_FILE (SIGHUP or a change seen), by result: applied or refused.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly routeTable = new Gauge({
    name: 'helix_gateway_route_table_info',
    help: 'The route table in force: 1, labelled with the SHA-256 of its file (built-in: none).',
    labelNames: ['sha256'] as const,
    registers: [this.registry],
  });
  readonly http2SessionsOpened = new Counter({
    name: 'helix_gateway_http2_sessions_total',
    help: 'HTTP/2 connections (sessions) opened by clients on the public port.',
    registers: [this.registry],
  });
  readonly http2Sessions = new Gauge({
    name: 'helix_gateway_http2_sessions',
    help: 'HTTP/2 connections (sessions) open now.',
    registers: [this.registry],
  });
  readonly spansDropped = new Counter({
    name: 'helix_gateway_spans_dropped_total',
    help: 'Finished spans that never reached the collector, by reason: queue_full (the export queue was full) or export_failed (the collector refused or could not be reached).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly spanExportsFailed = new Counter({
    name: 'helix_gateway_span_exports_failed_total',
    help: "Span export requests to the OTLP collector that failed, after the exporter's own retries.",
    registers: [this.registry],
  });
  readonly redisUp = new Gauge({
    name: 'helix_gateway_redis_up',
    help: '1 while rate-limit counters are shared through Redis, 0 while counting locally.',
    registers: [this.registry],
  });

  /**
   * Series bound once per route, method and status class: `labels()` builds and checks a label
   * object and binds new closures on every call (about 1 µs a request, profiled).
   */
  private readonly requestSeries = new Map<string, Map<string, Map<string, RequestSeries>>>();
  private readonly upstreamSeries = new Map<string, { observe(value: number): void }>();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    // prom-client reports these three as gauges named like counters, which `promtool check
    // metrics` refuses; each is the sum of its unsuffixed gauge by type (nodejs_active_handles…).
    for (const name of SUFFIXED_GAUGES) this.registry.removeSingleMetric(name);
  }

  /** The series of a request's labels, bound at its first use (every label is bounded). */
  requestSeriesOf(route: string, method: string, statusClass: string): RequestSeries {
    let byMethod = this.requestSeries.get(route);
    if (!byMethod) this.requestSeries.set(route, (byMethod = new Map()));
    let byClass = byMethod.get(method);
    if (!byClass) byMethod.set(method, (byClass = new Map()));
    let series = byClass.get(statusClass);
    if (!series) {
      series = {
        requests: this.requests.labels(route, method, statusClass),
        duration: this.requestDuration.labels(route, method, statusClass),
      };
      byClass.set(statusClass, series);
    }
    return series;
  }

  /** The upstream time-to-first-byte histogram of a service, bound at its first use. */
  upstreamDurationOf(service: string): { observe(value: number): void } {
    let series = this.upstreamSeries.get(service);
    if (!series) {
      series = this.upstreamDuration.labels(service);
      this.upstreamSeries.set(service, series);
    }
    return series;
  }

  /** Where the per-service in-flight figures are read at each scrape (the route table in force). */
  observeUpstreamInFlight(
    read: () => Iterable<{ readonly name: string; readonly inFlight: number }>,
  ): void {
    this.readInFlight = read;
  }
}
