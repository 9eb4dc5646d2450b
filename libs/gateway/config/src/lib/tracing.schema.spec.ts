import { ConfigError, loadGatewayConfig } from './load-config';

function errorOf(env: Record<string, string>): string {
  try {
    loadGatewayConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

const ON = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };

describe('tracing configuration (OTEL_*)', () => {
  it('is off by default, and off again with OTEL_TRACES_EXPORTER=none', () => {
    expect(loadGatewayConfig({}).tracing).toBeUndefined();
    expect(loadGatewayConfig({ ...ON, OTEL_TRACES_EXPORTER: 'none' }).tracing).toBeUndefined();
  });

  it('turns on with an endpoint, with the SDK defaults', () => {
    expect(loadGatewayConfig(ON).tracing).toEqual({
      url: 'http://collector:4318/v1/traces',
      protocol: 'http/protobuf',
      headers: {},
      timeoutMs: 10_000,
      serviceName: 'helix-gateway',
      resourceAttributes: {},
      sampler: 'parentbased_always_on',
      ratio: 1,
      scheduleDelayMs: 5000,
      maxQueueSize: 2048,
      maxExportBatchSize: 512,
    });
  });

  it('appends /v1/traces to the base endpoint and takes the traces endpoint as it is', () => {
    const base = (value: string) =>
      loadGatewayConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: value }).tracing?.url;
    expect(base('https://otlp.example.com/')).toBe('https://otlp.example.com/v1/traces');
    expect(base('http://c:4318/otlp')).toBe('http://c:4318/otlp/v1/traces');
    expect(
      loadGatewayConfig({
        ...ON,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://tempo:4318/custom/path',
      }).tracing?.url,
    ).toBe('http://tempo:4318/custom/path');
  });

  it('reads the protocol, the signal-specific one first', () => {
    const protocolOf = (env: Record<string, string>) =>
      loadGatewayConfig({ ...ON, ...env }).tracing?.protocol;
    expect(protocolOf({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })).toBe('http/json');
    expect(
      protocolOf({
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf',
      }),
    ).toBe('http/protobuf');
  });

  it('takes the service name from OTEL_SERVICE_NAME over OTEL_RESOURCE_ATTRIBUTES', () => {
    const attrs = 'service.name=from-attrs,deployment.environment.name=prod%20eu,team=edge';
    expect(loadGatewayConfig({ ...ON, OTEL_RESOURCE_ATTRIBUTES: attrs }).tracing).toMatchObject({
      serviceName: 'from-attrs',
      resourceAttributes: { 'deployment.environment.name': 'prod eu', team: 'edge' },
    });
    expect(
      loadGatewayConfig({ ...ON, OTEL_RESOURCE_ATTRIBUTES: attrs, OTEL_SERVICE_NAME: 'edge-gw' })
        .tracing?.serviceName,
    ).toBe('edge-gw');
  });

  it('parses exporter headers', () => {
    expect(
      loadGatewayConfig({
        ...ON,
        OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Basic%20abc,x-scope-orgid=tenant-1',
      }).tracing?.headers,
    ).toEqual({ authorization: 'Basic abc', 'x-scope-orgid': 'tenant-1' });
  });

  it('reads a ratio for the ratio samplers only', () => {
    const sampling = (sampler: string, arg: string) =>
      loadGatewayConfig({ ...ON, OTEL_TRACES_SAMPLER: sampler, OTEL_TRACES_SAMPLER_ARG: arg })
        .tracing;
    expect(sampling('parentbased_traceidratio', '0.25')).toMatchObject({ ratio: 0.25 });
    expect(sampling('traceidratio', '0')).toMatchObject({ sampler: 'traceidratio', ratio: 0 });
    expect(sampling('traceidratio', '1.0')).toMatchObject({ ratio: 1 });
    // The spec ignores the argument of a sampler that takes none.
    expect(sampling('always_on', 'whatever')).toMatchObject({ sampler: 'always_on', ratio: 1 });
  });

  it.each([
    [
      { OTEL_TRACES_SAMPLER: 'sometimes' },
      'OTEL_TRACES_SAMPLER="sometimes" must be one of always_on',
    ],
    [
      { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' },
      'OTEL_TRACES_SAMPLER_ARG="1.5" must be a ratio from 0 to 1 for traceidratio',
    ],
    [
      { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: 'half' },
      'OTEL_TRACES_SAMPLER_ARG="half" must be a ratio from 0 to 1 for parentbased_traceidratio',
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' },
      'OTEL_EXPORTER_OTLP_ENDPOINT="collector:4318" must be an absolute http:// or https:// URL',
    ],
    [
      { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'grpc://collector:4317' },
      'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="grpc://collector:4317" must be an absolute http:// or https:// URL',
    ],
    [
      { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
      'OTEL_EXPORTER_OTLP_PROTOCOL="grpc" must be http/protobuf or http/json (grpc is not supported)',
    ],
    [{ OTEL_TRACES_EXPORTER: 'zipkin' }, 'OTEL_TRACES_EXPORTER="zipkin" must be otlp or none'],
    [
      { OTEL_RESOURCE_ATTRIBUTES: 'team' },
      'OTEL_RESOURCE_ATTRIBUTES="team" must list attributes as key=value pairs',
    ],
    [
      { OTEL_RESOURCE_ATTRIBUTES: 'team=%zz' },
      'OTEL_RESOURCE_ATTRIBUTES="team=%zz" must list attributes as key=value pairs',
    ],
    [{ OTEL_BSP_MAX_QUEUE_SIZE: '0' }, 'OTEL_BSP_MAX_QUEUE_SIZE="0" must be a whole number from 1'],
    [{ OTEL_BSP_SCHEDULE_DELAY: '5s' }, 'OTEL_BSP_SCHEDULE_DELAY="5s" must be a whole number'],
    [
      { OTEL_BSP_MAX_QUEUE_SIZE: '100', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '200' },
      'OTEL_BSP_MAX_EXPORT_BATCH_SIZE="200" must not exceed OTEL_BSP_MAX_QUEUE_SIZE="100"',
    ],
    [
      { OTEL_EXPORTER_OTLP_TIMEOUT: '-1' },
      'OTEL_EXPORTER_OTLP_TIMEOUT="-1" must be a whole number',
    ],
  ])('refuses %j', (env, message) => {
    expect(errorOf({ ...ON, ...env })).toContain(`Invalid configuration: ${message}`);
  });

  it('never repeats the exporter headers, which carry tokens, in its message', () => {
    const message = errorOf({ ...ON, OTEL_EXPORTER_OTLP_HEADERS: 'authorization' });
    expect(message).toBe(
      'Invalid configuration: OTEL_EXPORTER_OTLP_HEADERS=(value not shown) must list headers as key=value pairs separated by commas, values percent-encoded',
    );
  });
});
