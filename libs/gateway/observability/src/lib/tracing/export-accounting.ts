import {
  type Attributes,
  type Counter,
  createNoopMeter,
  type Meter,
  type MeterProvider,
} from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { GatewayMetrics } from '../gateway-metrics';

/**
 * The batch span processor's self-observability counter (semconv, experimental): one `add` per
 * batch exported (no `error.type`) or failed (the error's name), and per span dropped because
 * the queue was full (`error.type` `queue_full`).
 */
const SPANS_PROCESSED = 'otel.sdk.processor.span.processed';
const QUEUE_FULL = 'queue_full';

/**
 * A MeterProvider of one counter, given to the BatchSpanProcessor to learn what it loses:
 * spans dropped from a full queue and spans of failed exports go to
 * `helix_gateway_spans_dropped_total{reason}`, failed export requests to
 * `helix_gateway_span_exports_failed_total`. A failing collector is logged once when it starts
 * failing and once when it is back, never per export.
 */
export class ExportAccounting implements MeterProvider {
  private failing = false;
  private readonly meter: Meter;

  constructor(
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {
    const noop = createNoopMeter();
    const processed: Counter = { add: (value, attributes) => this.count(value, attributes) };
    this.meter = Object.assign(Object.create(noop) as Meter, {
      createCounter: (name: string) =>
        name === SPANS_PROCESSED ? processed : noop.createCounter(name),
    });
  }

  getMeter(): Meter {
    return this.meter;
  }

  private count(spans: number, attributes: Attributes | undefined): void {
    const error = attributes?.['error.type'];
    if (error === QUEUE_FULL) {
      this.metrics.spansDropped.labels('queue_full').inc(spans);
      return;
    }
    if (error === undefined) {
      if (this.failing) this.logger.info('span export works again');
      this.failing = false;
      return;
    }
    this.metrics.spansDropped.labels('export_failed').inc(spans);
    this.metrics.spanExportsFailed.inc();
    if (!this.failing) {
      this.logger.warn(
        { error: String(error) },
        'span export failed; spans are dropped until the collector answers',
      );
    }
    this.failing = true;
  }
}
