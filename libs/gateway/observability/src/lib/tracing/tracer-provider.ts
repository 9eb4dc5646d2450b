import { randomUUID } from 'node:crypto';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  type BufferConfig,
  ParentBasedSampler,
  type Sampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import {
  ATTR_SERVICE_INSTANCE_ID,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
} from '@opentelemetry/semantic-conventions';
import type { TracingConfig } from '@helix/gateway-config';
import type { ExportAccounting } from './export-accounting';

export type TracerProvider = BasicTracerProvider;

function sampler(config: TracingConfig): Sampler {
  switch (config.sampler) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(config.ratio);
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.ratio) });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/**
 * The SDK as the gateway uses it, built once at boot with tracing on: the sampler, the
 * resource, one BatchSpanProcessor in front of the OTLP/HTTP exporter of the protocol, and the
 * W3C Trace Context propagator.
 */
export function createTracing(
  tracing: TracingConfig,
  version: string,
  accounting: ExportAccounting,
): { provider: BasicTracerProvider; propagator: W3CTraceContextPropagator } {
  const exporterConfig = {
    url: tracing.url,
    headers: tracing.headers,
    timeoutMillis: tracing.timeoutMs,
  };
  const exporter =
    tracing.protocol === 'http/json'
      ? new OtlpJsonExporter(exporterConfig)
      : new OtlpProtoExporter(exporterConfig);
  // sdk-trace-base's BatchSpanProcessor hands its options on to sdk-trace's, whose
  // (experimental) self-observability meter is how its drops and failed exports are seen.
  const buffer: BufferConfig & { selfObsMeterProvider: ExportAccounting } = {
    maxQueueSize: tracing.maxQueueSize,
    maxExportBatchSize: tracing.maxExportBatchSize,
    scheduledDelayMillis: tracing.scheduleDelayMs,
    exportTimeoutMillis: tracing.timeoutMs,
    selfObsMeterProvider: accounting,
  };
  const provider = new BasicTracerProvider({
    sampler: sampler(tracing),
    resource: defaultResource().merge(
      resourceFromAttributes({
        ...tracing.resourceAttributes,
        [ATTR_SERVICE_NAME]: tracing.serviceName,
        [ATTR_SERVICE_VERSION]: version,
        // Each process of GATEWAY_WORKERS is an instance of its own.
        [ATTR_SERVICE_INSTANCE_ID]: randomUUID(),
      }),
    ),
    spanProcessors: [new BatchSpanProcessor(exporter, buffer)],
  });
  return { provider, propagator: new W3CTraceContextPropagator() };
}
