import { z } from 'zod';
import { integer } from './env-rules';

/**
 * The OpenTelemetry SDK's own environment variables for traces (opentelemetry.io, "SDK
 * configuration"), parsed here like every other variable: the SDK is handed the result and
 * never reads the environment itself, so a `.env` file counts for it too.
 */
export const DEFAULT_OTEL_SERVICE_NAME = 'helix-gateway';
export const DEFAULT_OTEL_TRACES_SAMPLER = 'parentbased_always_on';
export const DEFAULT_OTEL_EXPORTER_OTLP_PROTOCOL: OtlpProtocol = 'http/protobuf';
export const DEFAULT_OTEL_EXPORTER_OTLP_TIMEOUT = 10_000;
export const DEFAULT_OTEL_BSP_SCHEDULE_DELAY = 5000;
export const DEFAULT_OTEL_BSP_MAX_QUEUE_SIZE = 2048;
export const DEFAULT_OTEL_BSP_MAX_EXPORT_BATCH_SIZE = 512;

export const OTEL_SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
export type OtelSampler = (typeof OTEL_SAMPLERS)[number];

export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

const otlpUrl = z
  .string()
  .trim()
  .optional()
  .transform((value, ctx) => {
    if (!value) return undefined;
    try {
      const url = new URL(value);
      if ((url.protocol === 'http:' || url.protocol === 'https:') && !url.username) return url;
    } catch {
      // reported below
    }
    ctx.addIssue({
      code: 'custom',
      message: 'must be an absolute http:// or https:// URL without credentials',
    });
    return z.NEVER;
  });

const protocol = (fallback?: OtlpProtocol) =>
  z
    .string()
    .trim()
    .optional()
    .transform((value, ctx): OtlpProtocol | undefined => {
      if (!value) return fallback;
      if ((OTLP_PROTOCOLS as readonly string[]).includes(value)) return value as OtlpProtocol;
      ctx.addIssue({
        code: 'custom',
        message: `must be ${OTLP_PROTOCOLS.join(' or ')} (grpc is not supported)`,
      });
      return z.NEVER;
    });

/**
 * `key=value,key=value`, values percent-decoded, as the spec writes OTEL_RESOURCE_ATTRIBUTES
 * and OTEL_EXPORTER_OTLP_HEADERS. `what` names an entry in the message.
 */
const keyValueList = (what: string) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => {
      const pairs: Record<string, string> = {};
      for (const entry of (value ?? '').split(',')) {
        if (entry.trim() === '') continue;
        const eq = entry.indexOf('=');
        const key = eq === -1 ? '' : entry.slice(0, eq).trim();
        let decoded: string | undefined;
        try {
          decoded = eq === -1 ? undefined : decodeURIComponent(entry.slice(eq + 1).trim());
        } catch {
          decoded = undefined;
        }
        if (key === '' || decoded === undefined) {
          ctx.addIssue({
            code: 'custom',
            message: `must list ${what} as key=value pairs separated by commas, values percent-encoded`,
          });
          return z.NEVER;
        }
        pairs[key] = decoded;
      }
      return pairs;
    });

export const tracingEnv = {
  OTEL_TRACES_EXPORTER: z
    .enum(['otlp', 'none'], { message: 'must be otlp or none' })
    .default('otlp'),
  OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl,
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otlpUrl,
  OTEL_EXPORTER_OTLP_PROTOCOL: protocol(DEFAULT_OTEL_EXPORTER_OTLP_PROTOCOL),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: protocol(),
  OTEL_EXPORTER_OTLP_HEADERS: keyValueList('headers'),
  OTEL_EXPORTER_OTLP_TIMEOUT: integer(1, 600_000, DEFAULT_OTEL_EXPORTER_OTLP_TIMEOUT),
  OTEL_SERVICE_NAME: z
    .string()
    .trim()
    .optional()
    .transform((v) => v || undefined),
  OTEL_RESOURCE_ATTRIBUTES: keyValueList('attributes'),
  OTEL_TRACES_SAMPLER: z
    .enum(OTEL_SAMPLERS, { message: `must be one of ${OTEL_SAMPLERS.join(', ')}` })
    .default(DEFAULT_OTEL_TRACES_SAMPLER),
  OTEL_TRACES_SAMPLER_ARG: z
    .string()
    .trim()
    .optional()
    .transform((v) => v || undefined),
  OTEL_BSP_SCHEDULE_DELAY: integer(0, 3_600_000, DEFAULT_OTEL_BSP_SCHEDULE_DELAY),
  OTEL_BSP_MAX_QUEUE_SIZE: integer(1, 1_000_000, DEFAULT_OTEL_BSP_MAX_QUEUE_SIZE),
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: integer(1, 1_000_000, DEFAULT_OTEL_BSP_MAX_EXPORT_BATCH_SIZE),
};

/** Variables whose value an error message must not repeat: headers carry collector tokens. */
export const SECRET_VARIABLES: ReadonlySet<string> = new Set(['OTEL_EXPORTER_OTLP_HEADERS']);

type TracingEnv = { [K in keyof typeof tracingEnv]: z.output<(typeof tracingEnv)[K]> };

/** The traces endpoint: the signal's own URL as given, or `<base>/v1/traces` (OTLP spec). */
function tracesUrl(env: TracingEnv): URL | undefined {
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!base) return undefined;
  return new URL(`${base.pathname.replace(/\/$/, '')}/v1/traces`, base);
}

/**
 * What the tracer is built from, or undefined when tracing is off: off unless an OTLP endpoint
 * is set, and `OTEL_TRACES_EXPORTER=none` turns it off again. Returns a message naming the
 * variable when two of them do not go together.
 */
export function resolveTracing(env: TracingEnv) {
  const url = tracesUrl(env);
  if (!url || env.OTEL_TRACES_EXPORTER === 'none') return undefined;
  const sampler = env.OTEL_TRACES_SAMPLER;
  let ratio = 1;
  const arg = env.OTEL_TRACES_SAMPLER_ARG;
  // The spec ignores the argument of a sampler that takes none.
  if (sampler.endsWith('traceidratio') && arg !== undefined) {
    ratio = /^(?:\d+(?:\.\d*)?|\.\d+)$/.test(arg) ? Number(arg) : Number.NaN;
    if (!(ratio >= 0 && ratio <= 1)) {
      return `Invalid configuration: OTEL_TRACES_SAMPLER_ARG=${JSON.stringify(arg)} must be a ratio from 0 to 1 for ${sampler}`;
    }
  }
  if (env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE > env.OTEL_BSP_MAX_QUEUE_SIZE) {
    return `Invalid configuration: OTEL_BSP_MAX_EXPORT_BATCH_SIZE="${env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE}" must not exceed OTEL_BSP_MAX_QUEUE_SIZE="${env.OTEL_BSP_MAX_QUEUE_SIZE}"`;
  }
  const resource = { ...env.OTEL_RESOURCE_ATTRIBUTES };
  // OTEL_SERVICE_NAME wins over a service.name in OTEL_RESOURCE_ATTRIBUTES (spec).
  const serviceName =
    env.OTEL_SERVICE_NAME ?? resource['service.name'] ?? DEFAULT_OTEL_SERVICE_NAME;
  delete resource['service.name'];
  return {
    url: url.href,
    protocol: env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL,
    headers: env.OTEL_EXPORTER_OTLP_HEADERS,
    timeoutMs: env.OTEL_EXPORTER_OTLP_TIMEOUT,
    serviceName,
    resourceAttributes: resource,
    sampler,
    ratio,
    scheduleDelayMs: env.OTEL_BSP_SCHEDULE_DELAY,
    maxQueueSize: env.OTEL_BSP_MAX_QUEUE_SIZE,
    maxExportBatchSize: env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
  };
}

/** The tracer's settings, when tracing is on. */
export type TracingConfig = Exclude<ReturnType<typeof resolveTracing>, string | undefined>;
