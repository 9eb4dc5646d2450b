import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { GATEWAY_CONFIG, type GatewayConfig } from '@helix/gateway-config';
import { AccessLog } from './access-log';
import { GatewayMetrics, methodLabel, statusClass } from './gateway-metrics';
import { ROOT_LOGGER } from './logger';
import { redactQuery } from './redact-query';
import { attachRecord, type RequestRecord } from './request-record';
import { endServerSpan } from './tracing/gateway-tracer';

type ClientIpResolver = (req: IncomingMessage) => string;

/** One failed upstream exchange, for an operator to find in the access log by request id. */
export interface UpstreamFailureNote {
  /** Epoch milliseconds. */
  readonly time: number;
  readonly route: string;
  readonly service: string;
  readonly instance: number | undefined;
  readonly code: string;
  readonly requestId: string;
}

// A request's bytes are often read along with its headers, before the gateway sees it, so
// what the socket had read when the previous request on it ended is where this one starts.
const READ_BEFORE = Symbol('helix.bytesReadBefore');
type CountedSocket = Socket & { [READ_BEFORE]?: number };

/**
 * Opens a RequestRecord for every request and, when its response closes, writes the access-log
 * line and updates the metrics. Nothing here runs before the response is on its way.
 */
@Injectable()
export class RequestObserver {
  /** Undefined when the access log is off. */
  private readonly accessLog: AccessLog | undefined;
  private readonly metricsOn: boolean;
  private readonly tracing: boolean;
  private readonly redactKeys: ReadonlySet<string>;
  private resolveClientIp: ClientIpResolver = (req) => req.socket.remoteAddress ?? 'unknown';
  private failureListener: ((note: UpstreamFailureNote) => void) | undefined;

  constructor(
    @Inject(GATEWAY_CONFIG) config: GatewayConfig,
    @Inject(ROOT_LOGGER) logger: Logger,
    private readonly metrics: GatewayMetrics,
  ) {
    this.accessLog =
      config.ACCESS_LOG && logger.isLevelEnabled('info') ? new AccessLog(logger) : undefined;
    this.metricsOn = config.METRICS_PORT !== 0;
    this.tracing = config.tracing !== undefined;
    this.redactKeys = new Set(config.LOG_REDACT_QUERY_KEYS);
  }

  /** The edge's TRUST_PROXY-aware resolver, for requests the rate limiter did not look at. */
  useClientIpResolver(resolver: ClientIpResolver): void {
    this.resolveClientIp = resolver;
  }

  /** Told of every failed upstream exchange when its response closes (the status page's list). */
  onUpstreamFailure(listener: (note: UpstreamFailureNote) => void): void {
    this.failureListener = listener;
  }

  begin(req: IncomingMessage, res: ServerResponse, startedAt: number): RequestRecord {
    // An HTTP/2 stream shares its connection's byte counts with every other stream on it, so
    // only HTTP/1.1 requests log the bytes they moved.
    const socket = req.httpVersionMajor === 2 ? undefined : (req.socket as CountedSocket);
    const record: RequestRecord = {
      startedAt,
      bytesReadBefore: socket ? (socket[READ_BEFORE] ?? 0) : 0,
      bytesWrittenBefore: socket ? socket.bytesWritten : 0,
      route: 'gateway',
      service: undefined,
      clientIp: undefined,
      upstreamSentAt: undefined,
      upstreamFirstByteAt: undefined,
      upstreamFailure: undefined,
      upstreamInstance: undefined,
      retries: 0,
      span: undefined,
      upstreamSpan: undefined,
    };
    attachRecord(res, record);
    if (this.accessLog || this.metricsOn || this.tracing) {
      const url = req.url ?? '';
      if (this.metricsOn) this.metrics.inFlight.inc();
      // `on`, not `once`: a response closes once, and `once` wraps every listener anew.
      res.on('close', () => this.finish(req, res, record, url));
    }
    return record;
  }

  private finish(
    req: IncomingMessage,
    res: ServerResponse,
    record: RequestRecord,
    url: string,
  ): void {
    const durationMs = performance.now() - record.startedAt;
    const status = res.statusCode;
    const route = record.route === 'gateway' && status === 404 ? 'unmatched' : record.route;
    const ttfbMs =
      record.upstreamSentAt !== undefined && record.upstreamFirstByteAt !== undefined
        ? record.upstreamFirstByteAt - record.upstreamSentAt
        : undefined;
    if (this.metricsOn) {
      const m = this.metrics;
      const method = methodLabel(req.method);
      const cls = statusClass(status);
      m.inFlight.dec();
      const series = m.requestSeriesOf(route, method, cls);
      series.requests.inc();
      series.duration.observe(durationMs / 1000);
      if (ttfbMs !== undefined && record.service)
        m.upstreamDurationOf(record.service).observe(ttfbMs / 1000);
      if (record.upstreamFailure && record.service) {
        m.upstreamErrors.labels(record.service, record.upstreamFailure).inc();
        this.failureListener?.({
          time: Date.now(),
          route,
          service: record.service,
          instance: record.upstreamInstance,
          code: record.upstreamFailure,
          requestId: String(res.getHeader('x-request-id') ?? ''),
        });
      }
      if (status === 429) m.rateLimited.labels(route).inc();
      if (record.retries > 0 && record.service)
        m.retries.labels(record.service).inc(record.retries);
    }
    const socket = req.httpVersionMajor === 2 ? undefined : (req.socket as CountedSocket);
    if (socket) socket[READ_BEFORE] = socket.bytesRead;
    const span = record.span;
    if (span) endServerSpan(record, status, record.clientIp ?? this.resolveClientIp(req));
    if (this.accessLog) {
      const ids = span?.spanContext();
      this.accessLog.write({
        requestId: String(res.getHeader('x-request-id')),
        method: req.method,
        path: redactQuery(url, this.redactKeys),
        route,
        service: record.service,
        status,
        // An HTTP/2 stream reset by its client reports itself finished, not ended.
        aborted: !(res.writableEnded && res.writableFinished),
        bytesIn: socket && socket.bytesRead - record.bytesReadBefore,
        bytesOut: socket && socket.bytesWritten - record.bytesWrittenBefore,
        protocol: req.httpVersionMajor === 2 ? 'h2' : undefined,
        durationMs: round(durationMs),
        upstreamTtfbMs: ttfbMs === undefined ? undefined : round(ttfbMs),
        upstreamFailure: record.upstreamFailure,
        retries: record.retries,
        clientIp: record.clientIp ?? this.resolveClientIp(req),
        userAgent: req.headers['user-agent'],
        traceId: ids?.traceId,
        spanId: ids?.spanId,
      });
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
