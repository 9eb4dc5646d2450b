import { Writable } from 'node:stream';
import pino from 'pino';
import { GatewayMetrics } from '../gateway-metrics';
import { ExportAccounting } from './export-accounting';

function setUp() {
  const lines: string[] = [];
  const logger = pino(
    { base: undefined, timestamp: false },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString().trim().split('\n'));
        done();
      },
    }),
  );
  const metrics = new GatewayMetrics();
  const meter = new ExportAccounting(metrics, logger).getMeter();
  const processed = meter.createCounter('otel.sdk.processor.span.processed');
  const value = async (name: string, labels: Record<string, string> = {}) => {
    const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
    const values = (metric?.values ?? []) as { value: number; labels: Record<string, string> }[];
    return values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
  };
  const messages = () => lines.map((line) => (JSON.parse(line) as { msg: string }).msg);
  return { meter, processed, value, messages };
}

const BSP = { 'otel.component.type': 'batching_span_processor' };

describe('ExportAccounting (the batch span processor self-observability meter)', () => {
  it('counts spans dropped from a full queue', async () => {
    const { processed, value } = setUp();
    processed.add(1, { ...BSP, 'error.type': 'queue_full' });
    processed.add(1, { ...BSP, 'error.type': 'queue_full' });
    expect(await value('helix_gateway_spans_dropped_total', { reason: 'queue_full' })).toBe(2);
    expect(await value('helix_gateway_span_exports_failed_total')).toBe(0);
  });

  it('counts the spans of a failed export as dropped and the export as failed, logging once per outage', async () => {
    const { processed, value, messages } = setUp();
    processed.add(512, { ...BSP, 'error.type': 'OTLPExporterError' });
    processed.add(100, { ...BSP, 'error.type': 'OTLPExporterError' });
    expect(await value('helix_gateway_spans_dropped_total', { reason: 'export_failed' })).toBe(612);
    expect(await value('helix_gateway_span_exports_failed_total')).toBe(2);
    processed.add(512, BSP);
    processed.add(512, BSP);
    expect(messages()).toEqual([
      'span export failed; spans are dropped until the collector answers',
      'span export works again',
    ]);
  });

  it('counts nothing for a successful export', async () => {
    const { processed, value, messages } = setUp();
    processed.add(512, BSP);
    expect(await value('helix_gateway_spans_dropped_total')).toBeUndefined();
    expect(await value('helix_gateway_span_exports_failed_total')).toBe(0);
    expect(messages()).toEqual([]);
  });

  it("leaves the processor's other instruments as no-ops", () => {
    const { meter } = setUp();
    expect(() => {
      meter.createUpDownCounter('otel.sdk.processor.span.queue.capacity').add(2048);
      meter.createCounter('something.else').add(1);
      meter
        .createObservableUpDownCounter('otel.sdk.processor.span.queue.size')
        .addCallback((result) => result.observe(1));
    }).not.toThrow();
  });
});
