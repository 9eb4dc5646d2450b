import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import {
  defaultTextMapGetter,
  type HrTime,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type TextMapPropagator,
  trace,
  type Tracer,
} from '@opentelemetry/api';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
} from '@opentelemetry/semantic-conventions';
import type { Logger } from 'pino';
import { GATEWAY_CONFIG, type GatewayConfig } from '@helix/gateway-config';
import { GatewayMetrics } from '../gateway-metrics';
import { ROOT_LOGGER } from '../logger';
import type { RequestRecord } from '../request-record';
import { ExportAccounting } from './export-accounting';
import {
  clientSpanName,
  protocolVersion,
  serverSpanName,
  spanMethod,
  upstreamAddress,
} from './span-shape';
import type { TracerProvider } from './tracer-provider';

/** Injection token of the gateway's version, the `service.version` of its spans. */
export const GATEWAY_VERSION = Symbol('GATEWAY_VERSION');
/** The gateway's own attribute: its request id, as the access log and `X-Request-Id` carry it. */
export const ATTR_HELIX_REQUEST_ID = 'helix.request_id';
const SCOPE = '@helix/gateway';

/** What a try's CLIENT span needs of the instance it goes to. */
export interface TracedInstance {
  /** `host[:port]`, the Host header the instance receives. */
  readonly host: string;
  readonly url: URL;
}

/**
 * The gateway's spans, written by hand on the request path (no auto-instrumentation: the HTTP
 * one cost a user 80% of throughput, opentelemetry-js#4372, and undici's appends a second
 * `traceparent`, opentelemetry-js-contrib#3711). One SERVER span per proxied request, one
 * CLIENT span per try; the gateway alone owns the `traceparent` an upstream receives.
 *
 * Finished spans go to a BatchSpanProcessor: `onEnd` only pushes onto a bounded queue, so a
 * collector that is down or slow costs a request nothing; what overflows is dropped and
 * counted. With tracing off (`config.tracing` undefined) nothing here is built, and the
 * pipeline's one check of {@link enabled} is all a request pays.
 */
@Injectable()
export class GatewayTracer implements OnApplicationShutdown {
  readonly enabled: boolean;
  private readonly tracer: Tracer | undefined;
  private readonly provider: TracerProvider | undefined;
  private readonly propagator: TextMapPropagator | undefined;
  private readonly flushLimitMs: number;
  /** Each instance's server.address and server.port, worked out at its first try. */
  private readonly addresses = new WeakMap<TracedInstance, { address: string; port: number }>();

  constructor(
    @Inject(GATEWAY_CONFIG) config: GatewayConfig,
    @Inject(GATEWAY_VERSION) version: string,
    metrics: GatewayMetrics,
    @Inject(ROOT_LOGGER) logger: Logger,
  ) {
    const tracing = config.tracing;
    this.enabled = tracing !== undefined;
    // The drain's limit bounds the flush too, and one export's own limit is all it can need.
    this.flushLimitMs = Math.min(config.SHUTDOWN_TIMEOUT_MS, tracing?.timeoutMs ?? 0);
    if (!tracing) return;
    // Required here, not imported: the SDK and the exporters take start-up time that a gateway
    // without tracing should not spend (esbuild keeps a required module's evaluation lazy).
    const sdk = require('./tracer-provider') as typeof import('./tracer-provider');
    const built = sdk.createTracing(tracing, version, new ExportAccounting(metrics, logger));
    this.provider = built.provider;
    this.propagator = built.propagator;
    this.tracer = built.provider.getTracer(SCOPE, version);
  }

  /**
   * Opens the SERVER span of a proxied request, as a child of the caller's span when the
   * request carries a valid `traceparent` (its `tracestate` kept), else as a new trace's root.
   * The sampler decides here, once; an unsampled span still has ids to propagate.
   */
  startServerSpan(
    req: IncomingMessage,
    record: RequestRecord,
    route: string,
    path: string,
    requestId: string,
    encrypted: boolean,
  ): void {
    const propagator = this.propagator as TextMapPropagator;
    const parent = propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter);
    const method = spanMethod(req.method);
    record.span = (this.tracer as Tracer).startSpan(
      serverSpanName(method, route),
      {
        kind: SpanKind.SERVER,
        startTime: spanTime(record.startedAt),
        attributes: {
          [ATTR_HTTP_REQUEST_METHOD]: method,
          [ATTR_URL_PATH]: path,
          [ATTR_URL_SCHEME]: encrypted ? 'https' : 'http',
          [ATTR_HTTP_ROUTE]: route,
          [ATTR_NETWORK_PROTOCOL_VERSION]: protocolVersion(req.httpVersion),
          [ATTR_HELIX_REQUEST_ID]: requestId,
        },
      },
      parent,
    );
  }

  /**
   * Opens the CLIENT span of one try (the first, or a retry on another instance) and writes
   * its context as the request's one `traceparent`, replacing the caller's, with the
   * caller's `tracestate`.
   */
  startTry(
    record: RequestRecord,
    req: IncomingMessage,
    instance: TracedInstance,
    tries: number,
  ): void {
    const method = spanMethod(req.method);
    let where = this.addresses.get(instance);
    if (where === undefined) {
      where = upstreamAddress(instance.host, instance.url);
      this.addresses.set(instance, where);
    }
    const { address, port } = where;
    const parent = trace.setSpan(ROOT_CONTEXT, record.span as Span);
    const span = (this.tracer as Tracer).startSpan(
      clientSpanName(method),
      {
        kind: SpanKind.CLIENT,
        attributes: {
          [ATTR_HTTP_REQUEST_METHOD]: method,
          [ATTR_SERVER_ADDRESS]: address,
          [ATTR_SERVER_PORT]: port,
          [ATTR_HTTP_REQUEST_RESEND_COUNT]: tries > 1 ? tries - 1 : undefined,
        },
        startTime: spanTime(performance.now()),
      },
      parent,
    );
    record.upstreamSpan = span;
    writeTraceContext(req.headers, span.spanContext());
  }

  /**
   * Exports what is queued before the process exits, for at most SHUTDOWN_TIMEOUT_MS or one
   * export's limit (OTEL_EXPORTER_OTLP_TIMEOUT), whichever is shorter.
   */
  async onApplicationShutdown(): Promise<void> {
    if (!this.provider) return;
    const abandon = new AbortController();
    await Promise.race([
      this.provider.shutdown(),
      sleep(this.flushLimitMs, undefined, { signal: abandon.signal }).catch(() => undefined),
    ]);
    abandon.abort();
  }
}

const ORIGIN_S = Math.trunc(performance.timeOrigin / 1000);
const ORIGIN_REST_MS = performance.timeOrigin - ORIGIN_S * 1000;

/**
 * A span time on the process's one monotonic clock, as OpenTelemetry's `[seconds, nanos]`.
 * Every span start and end goes through it: given milliseconds, the SDK adds each span's own
 * offset, taken from `Date.now()` in whole milliseconds when the span is made, so a CLIENT span
 * could seem to end after its SERVER span, or a retry to start before the try it follows.
 */
export function spanTime(monotonicMs: number): HrTime {
  const ms = ORIGIN_REST_MS + monotonicMs;
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.round((ms - seconds * 1000) * 1e6);
  return nanos >= 1e9 ? [ORIGIN_S + seconds + 1, nanos - 1e9] : [ORIGIN_S + seconds, nanos];
}

/**
 * The try's context as the request's one `traceparent` (W3C Trace Context §3.2), replacing the
 * caller's, and the trace's `tracestate` (§3.3: it belongs to the trace its traceparent
 * names, so a caller's tracestate without a valid traceparent goes). Written directly: the
 * propagator's inject would build two contexts per try for the same string.
 */
function writeTraceContext(headers: IncomingHttpHeaders, context: SpanContext): void {
  const flags = context.traceFlags.toString(16).padStart(2, '0');
  headers.traceparent = `00-${context.traceId}-${context.spanId}-${flags}`;
  const traceState = context.traceState?.serialize();
  if (traceState) headers.tracestate = traceState;
  else if (headers.tracestate !== undefined) delete headers.tracestate;
}

/** The upstream's response head came back on the current try: its status, 5xx an error. */
export function answerUpstreamTry(record: RequestRecord, statusCode: number): void {
  const span = record.upstreamSpan as Span;
  span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, statusCode);
  if (statusCode >= 500) {
    span.setAttribute(ATTR_ERROR_TYPE, String(statusCode));
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
}

/** The current try failed (`refused`, `reset`, `timeout`…, the error table's code): it ends. */
export function failUpstreamTry(record: RequestRecord, failure: string): void {
  const span = record.upstreamSpan as Span;
  record.upstreamSpan = undefined;
  span.setAttribute(ATTR_ERROR_TYPE, failure);
  span.setStatus({ code: SpanStatusCode.ERROR, message: failure });
  span.end(spanTime(performance.now()));
}

/**
 * The response is over: the last try's CLIENT span ends with it (its body streamed through
 * the gateway until now), then the SERVER span, with the status the client got; a 5xx is an
 * error, a 4xx is not (semantic conventions for SERVER spans).
 */
export function endServerSpan(record: RequestRecord, status: number, clientIp: string): void {
  const now = spanTime(performance.now());
  record.upstreamSpan?.end(now);
  record.upstreamSpan = undefined;
  const span = record.span as Span;
  span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
  span.setAttribute(ATTR_CLIENT_ADDRESS, clientIp);
  if (status >= 500) {
    span.setAttribute(ATTR_ERROR_TYPE, String(status));
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.end(now);
}
