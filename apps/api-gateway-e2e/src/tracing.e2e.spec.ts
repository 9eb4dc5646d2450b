import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import {
  type GatewayProcess,
  httpRequest,
  type RecordedRequest,
  startGateway,
  startStubUpstream,
  type StubUpstream,
} from '@helix/shared-testing';
import { closeSession, h2Request, openSession } from './http2-client';
import {
  type OtlpReceiver,
  type ReceivedSpan,
  type ReceiverMode,
  SPAN_KIND,
  STATUS,
  startOtlpReceiver,
} from './otlp-receiver';
import { describeWith } from './real-deps';
import { closedPort, until } from './support';
import { OPENSSL, tlsEnv, useTestCertificates } from './tls';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;
/** Exported every 50 ms, so a test waits for its spans briefly. */
const QUICK_EXPORT = { OTEL_BSP_SCHEDULE_DELAY: '50' };

function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

function traceparentOf(request: RecordedRequest): string {
  const values = [];
  for (let i = 0; i < request.rawHeaders.length; i += 2) {
    if (request.rawHeaders[i].toLowerCase() === 'traceparent')
      values.push(request.rawHeaders[i + 1]);
  }
  // Exactly one component owns traceparent: the upstream never sees two.
  expect(values).toHaveLength(1);
  return values[0];
}

async function spansOf(
  receiver: OtlpReceiver,
  match: (span: ReceivedSpan) => boolean,
  count: number,
): Promise<ReceivedSpan[]> {
  await until(async () => receiver.spans.filter(match).length >= count, 10_000);
  return receiver.spans.filter(match);
}

/** The SERVER span of request `requestId` and the CLIENT spans of its trace, oldest first. */
async function treeOf(
  receiver: OtlpReceiver,
  requestId: string,
  clients = 1,
): Promise<{ server: ReceivedSpan; clients: ReceivedSpan[] }> {
  const [server] = await spansOf(
    receiver,
    (s) => s.attributes['helix.request_id'] === requestId,
    1,
  );
  const children = await spansOf(
    receiver,
    (s) => s.traceId === server.traceId && s.parentSpanId === server.spanId,
    clients,
  );
  children.sort((a, b) => Number(a.startNs - b.startNs));
  return { server, clients: children };
}

function accessLine(
  gateway: GatewayProcess,
  requestId: string,
): Record<string, unknown> | undefined {
  return gateway
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{') && line.includes('"msg":"request"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .find((line) => line.requestId === requestId);
}

async function accessLineOf(gateway: GatewayProcess, requestId: string) {
  await until(async () => accessLine(gateway, requestId) !== undefined, 5000);
  return accessLine(gateway, requestId) as Record<string, unknown>;
}

function sample(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('tracing (OpenTelemetry over OTLP/HTTP)', () => {
  describe('http/protobuf to a collector that answers', () => {
    let receiver: OtlpReceiver;
    let auth: StubUpstream;
    let kira: StubUpstream;
    let gateway: GatewayProcess;
    let metricsUrl: string;
    let deadPort: number;

    beforeAll(async () => {
      receiver = await startOtlpReceiver();
      auth = await startStubUpstream({ name: 'auth' });
      kira = await startStubUpstream({ name: 'kira' });
      deadPort = await closedPort();
      const metricsPort = await closedPort();
      metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
      gateway = await startGateway({
        AUTH_SERVICE_URL: auth.url,
        TENANT_SERVICE_URL: `http://127.0.0.1:${deadPort}`,
        // A dead instance first: a GET that meets it is retried on the live one.
        KIRA_SERVICE_URL: `http://127.0.0.1:${deadPort},${kira.url}`,
        RETRY_BUDGET_PERCENT: '100',
        // One check at boot: the dead instances stay short of the unhealthy threshold.
        HEALTH_CHECK_INTERVAL_MS: '60000',
        METRICS_PORT: String(metricsPort),
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_SERVICE_NAME: 'edge-e2e',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=e2e,team=edge%20platform',
        ...QUICK_EXPORT,
      });
    });
    afterAll(async () => {
      await gateway?.stop();
      await Promise.all([auth?.close(), kira?.close(), receiver?.close()]);
    });

    it('gives a request without traceparent a new trace: a SERVER span, its CLIENT child, and the client span as the upstream’s parent', async () => {
      const res = await httpRequest(`${gateway.url}/api/auth/users/7?token=s3cret`, {
        headers: { 'x-request-id': 'trace-new', 'user-agent': 'e2e' },
      });
      expect(res.status).toBe(200);
      const { server, clients } = await treeOf(receiver, 'trace-new');
      expect(server).toMatchObject({
        name: 'GET /api/auth',
        kind: SPAN_KIND.SERVER,
        parentSpanId: '',
        traceState: '',
        status: { code: STATUS.UNSET },
        scope: '@helix/gateway',
      });
      expect(server.attributes).toEqual({
        'http.request.method': 'GET',
        'url.path': '/api/auth/users/7',
        'url.scheme': 'http',
        'http.route': '/api/auth',
        'http.response.status_code': 200,
        'client.address': '127.0.0.1',
        'network.protocol.version': '1.1',
        'helix.request_id': 'trace-new',
      });
      expect(clients).toHaveLength(1);
      const [client] = clients;
      expect(client).toMatchObject({
        name: 'GET',
        kind: SPAN_KIND.CLIENT,
        traceId: server.traceId,
        status: { code: STATUS.UNSET },
      });
      expect(client.attributes).toEqual({
        'http.request.method': 'GET',
        'server.address': '127.0.0.1',
        'server.port': auth.port,
        'http.response.status_code': 200,
      });
      // The try lies within the request.
      expect(client.startNs).toBeGreaterThanOrEqual(server.startNs);
      expect(client.endNs).toBeLessThanOrEqual(server.endNs);
      const upstream = await auth.waitFor((r) => r.headers['x-request-id'] === 'trace-new');
      expect(traceparentOf(upstream)).toBe(`00-${server.traceId}-${client.spanId}-01`);
      // Query values never reach a span.
      expect(
        JSON.stringify(receiver.spans, (_k, v) => (typeof v === 'bigint' ? 0 : v)),
      ).not.toContain('s3cret');
      expect(server.resource).toMatchObject({
        'service.name': 'edge-e2e',
        'service.version': (await httpRequest(`${gateway.url}/info`)).json().version,
        'deployment.environment.name': 'e2e',
        team: 'edge platform',
        'telemetry.sdk.language': 'nodejs',
      });
      expect(server.resource['service.instance.id']).toEqual(expect.any(String));
      expect(receiver.requests[0]).toEqual({
        contentType: 'application/x-protobuf',
        path: '/v1/traces',
      });
    });

    it("joins the caller's trace, keeps its tracestate, and hands the upstream one traceparent: the client span's", async () => {
      const traceId = hex(16);
      const callerSpan = hex(8);
      const res = await httpRequest(`${gateway.url}/api/auth/orders`, {
        method: 'POST',
        body: '{"a":1}',
        headers: {
          'x-request-id': 'trace-joined',
          traceparent: `00-${traceId}-${callerSpan}-01`,
          tracestate: 'vendor=abc,other=1',
        },
      });
      expect(res.status).toBe(200);
      const { server, clients } = await treeOf(receiver, 'trace-joined');
      expect(server).toMatchObject({
        name: 'POST /api/auth',
        traceId,
        parentSpanId: callerSpan,
        traceState: 'vendor=abc,other=1',
      });
      expect(clients[0]).toMatchObject({ traceId, traceState: 'vendor=abc,other=1' });
      const upstream = await auth.waitFor((r) => r.headers['x-request-id'] === 'trace-joined');
      expect(traceparentOf(upstream)).toBe(`00-${traceId}-${clients[0].spanId}-01`);
      expect(upstream.headers.tracestate).toBe('vendor=abc,other=1');
    });

    it('starts a new trace for a malformed traceparent, and drops a tracestate that came without one', async () => {
      const res = await httpRequest(`${gateway.url}/api/auth/bad-parent`, {
        headers: { 'x-request-id': 'trace-bad', traceparent: 'garbage', tracestate: 'vendor=x' },
      });
      expect(res.status).toBe(200);
      const { server, clients } = await treeOf(receiver, 'trace-bad');
      expect(server.parentSpanId).toBe('');
      const upstream = await auth.waitFor((r) => r.headers['x-request-id'] === 'trace-bad');
      expect(traceparentOf(upstream)).toBe(`00-${server.traceId}-${clients[0].spanId}-01`);
      expect(upstream.headers.tracestate).toBeUndefined();
    });

    it("follows an unsampled caller: no span is exported, yet the upstream gets the trace with flag 00 and the gateway's span as parent", async () => {
      const traceId = hex(16);
      const callerSpan = hex(8);
      const res = await httpRequest(`${gateway.url}/api/auth/unsampled`, {
        headers: {
          'x-request-id': 'trace-unsampled',
          traceparent: `00-${traceId}-${callerSpan}-00`,
        },
      });
      expect(res.status).toBe(200);
      const upstream = await auth.waitFor((r) => r.headers['x-request-id'] === 'trace-unsampled');
      const [, sentTrace, sentParent, flags] = TRACEPARENT.exec(traceparentOf(upstream)) ?? [];
      expect([sentTrace, flags]).toEqual([traceId, '00']);
      expect(sentParent).not.toBe(callerSpan);
      const line = await accessLineOf(gateway, 'trace-unsampled');
      expect(line.traceId).toBe(traceId);
      // A sampled request after it is exported: by then the unsampled one would have been.
      await httpRequest(`${gateway.url}/api/auth/after`, {
        headers: { 'x-request-id': 'after-unsampled' },
      });
      await treeOf(receiver, 'after-unsampled');
      expect(receiver.spans.filter((s) => s.traceId === traceId)).toEqual([]);
    });

    it('marks a 502 as an error on both spans, with the failure as the client span’s error.type', async () => {
      const res = await httpRequest(`${gateway.url}/api/tenants/x`, {
        method: 'POST',
        body: 'x',
        headers: { 'x-request-id': 'trace-502' },
      });
      expect(res.status).toBe(502);
      const { server, clients } = await treeOf(receiver, 'trace-502');
      expect(server).toMatchObject({ name: 'POST /api/tenants', status: { code: STATUS.ERROR } });
      expect(server.attributes).toMatchObject({
        'http.response.status_code': 502,
        'error.type': '502',
        'http.route': '/api/tenants',
      });
      expect(clients).toHaveLength(1);
      expect(clients[0].status.code).toBe(STATUS.ERROR);
      expect(clients[0].attributes).toEqual({
        'http.request.method': 'POST',
        'server.address': '127.0.0.1',
        'server.port': deadPort,
        'error.type': 'refused',
      });
    });

    it("marks an upstream's own 5xx on the client span, and leaves a 4xx unset on the server span", async () => {
      await httpRequest(`${gateway.url}/api/auth/status?code=503`, {
        headers: { 'x-request-id': 'trace-503' },
      });
      await httpRequest(`${gateway.url}/api/auth/status?code=404`, {
        headers: { 'x-request-id': 'trace-404' },
      });
      const failed = await treeOf(receiver, 'trace-503');
      expect(failed.server.status.code).toBe(STATUS.ERROR);
      expect(failed.clients[0].status.code).toBe(STATUS.ERROR);
      expect(failed.clients[0].attributes).toMatchObject({
        'http.response.status_code': 503,
        'error.type': '503',
      });
      const missing = await treeOf(receiver, 'trace-404');
      expect(missing.server.status.code).toBe(STATUS.UNSET);
      expect(missing.server.attributes['error.type']).toBeUndefined();
      expect(missing.server.attributes['http.response.status_code']).toBe(404);
    });

    it('gives a retried request two client spans, the second with http.request.resend_count, and the second as the upstream’s parent', async () => {
      // Round-robin over [dead, live]: within two GETs one meets the dead instance first.
      for (const id of ['trace-retry-a', 'trace-retry-b']) {
        const res = await httpRequest(`${gateway.url}/api/kira/item`, {
          headers: { 'x-request-id': id },
        });
        expect(res.status).toBe(200);
      }
      const [server] = await spansOf(
        receiver,
        (s) =>
          String(s.attributes['helix.request_id']).startsWith('trace-retry') &&
          receiver.spans.filter((c) => c.parentSpanId === s.spanId).length === 2,
        1,
      );
      const { clients } = await treeOf(receiver, String(server.attributes['helix.request_id']), 2);
      const [first, second] = clients;
      expect(first.status.code).toBe(STATUS.ERROR);
      expect(first.attributes).toEqual({
        'http.request.method': 'GET',
        'server.address': '127.0.0.1',
        'server.port': deadPort,
        'error.type': 'refused',
      });
      expect(second.attributes).toEqual({
        'http.request.method': 'GET',
        'server.address': '127.0.0.1',
        'server.port': kira.port,
        'http.request.resend_count': 1,
        'http.response.status_code': 200,
      });
      expect(server.status.code).toBe(STATUS.UNSET);
      const upstream = await kira.waitFor(
        (r) => r.headers['x-request-id'] === server.attributes['helix.request_id'],
      );
      expect(traceparentOf(upstream)).toBe(`00-${server.traceId}-${second.spanId}-01`);
    });

    it("writes the server span's traceId and spanId on the access-log line", async () => {
      await httpRequest(`${gateway.url}/api/auth/logged`, {
        headers: { 'x-request-id': 'trace-log' },
      });
      const { server } = await treeOf(receiver, 'trace-log');
      expect(await accessLineOf(gateway, 'trace-log')).toMatchObject({
        traceId: server.traceId,
        spanId: server.spanId,
      });
    });

    it("traces none of the gateway's own endpoints, answered preflights, the metrics port or the background health checks", async () => {
      const traceparent = `00-${hex(16)}-${hex(8)}-01`;
      const headers = { traceparent };
      for (const path of ['/heartbeat', '/health', '/info', '/health/auth', '/nowhere']) {
        await httpRequest(`${gateway.url}${path}`, {
          headers: { ...headers, 'x-request-id': `own${path.replaceAll('/', '-')}` },
        });
      }
      const preflight = await httpRequest(`${gateway.url}/api/auth/x`, {
        method: 'OPTIONS',
        headers: {
          ...headers,
          origin: 'https://app.example',
          'access-control-request-method': 'PUT',
          'x-request-id': 'own-preflight',
        },
      });
      expect(preflight.status).toBe(204);
      expect((await httpRequest(metricsUrl, { headers })).status).toBe(200);
      // A traced request after them: once it is exported, theirs would have been too.
      await httpRequest(`${gateway.url}/api/auth/sentinel`, {
        headers: { 'x-request-id': 'own-sentinel' },
      });
      await treeOf(receiver, 'own-sentinel');
      const traced = receiver.spans.filter((s) => s.kind === SPAN_KIND.SERVER);
      expect(traced.every((s) => s.attributes['http.route'] !== undefined)).toBe(true);
      expect(
        traced.filter((s) => String(s.attributes['helix.request_id']).startsWith('own-')),
      ).toHaveLength(1);
      expect(receiver.spans.filter((s) => s.traceId === traceparent.slice(3, 35))).toEqual([]);
      // The background checker's probes carry no trace context.
      const probe = await auth.waitFor(
        (r) => r.url === '/health' && r.headers['x-request-id'] === undefined,
      );
      expect(probe.headers.traceparent).toBeUndefined();
      // Nothing was lost on the way.
      const metrics = (await httpRequest(metricsUrl)).body.toString();
      expect(sample(metrics, 'helix_gateway_spans_dropped_total', '{reason="queue_full"}')).toBe(0);
      expect(sample(metrics, 'helix_gateway_span_exports_failed_total')).toBe(0);
    });
  });

  describe('http/json, sampling at ratio 0', () => {
    let receiver: OtlpReceiver;
    let auth: StubUpstream;
    let gateway: GatewayProcess;
    beforeAll(async () => {
      receiver = await startOtlpReceiver();
      auth = await startStubUpstream({ name: 'auth' });
      gateway = await startGateway({
        AUTH_SERVICE_URL: auth.url,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces`,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0',
        ...QUICK_EXPORT,
      });
    });
    afterAll(async () => {
      await gateway?.stop();
      await Promise.all([auth?.close(), receiver?.close()]);
    });

    it('samples no new trace, yet propagates one with flag 00 that the access log names', async () => {
      const res = await httpRequest(`${gateway.url}/api/auth/ratio-zero`, {
        headers: { 'x-request-id': 'ratio-zero' },
      });
      expect(res.status).toBe(200);
      const upstream = await auth.waitFor((r) => r.headers['x-request-id'] === 'ratio-zero');
      const [, traceId, parent, flags] = TRACEPARENT.exec(traceparentOf(upstream)) ?? [];
      expect(flags).toBe('00');
      expect(traceId).toMatch(/^(?!0+$)[0-9a-f]{32}$/);
      expect(parent).toMatch(/^(?!0+$)[0-9a-f]{16}$/);
      expect(await accessLineOf(gateway, 'ratio-zero')).toMatchObject({
        traceId,
        spanId: expect.stringMatching(/^[0-9a-f]{16}$/),
      });
    });

    it('still follows a sampled caller, and exports its spans as OTLP JSON', async () => {
      const traceId = hex(16);
      const res = await httpRequest(`${gateway.url}/api/auth/json`, {
        headers: { 'x-request-id': 'json-sampled', traceparent: `00-${traceId}-${hex(8)}-01` },
      });
      expect(res.status).toBe(200);
      const { server, clients } = await treeOf(receiver, 'json-sampled');
      expect(server).toMatchObject({ traceId, name: 'GET /api/auth', kind: SPAN_KIND.SERVER });
      expect(server.attributes['http.response.status_code']).toBe(200);
      expect(server.resource['service.name']).toBe('helix-gateway');
      expect(clients[0]).toMatchObject({ name: 'GET', kind: SPAN_KIND.CLIENT });
      expect(receiver.requests.every((r) => r.contentType.startsWith('application/json'))).toBe(
        true,
      );
      expect(
        receiver.spans.filter((s) => s.attributes['helix.request_id'] === 'ratio-zero'),
      ).toEqual([]);
    });
  });

  describeWith(OPENSSL, 'over TLS: HTTP/2 and HTTP/1.1', () => {
    const pki = useTestCertificates();
    let receiver: OtlpReceiver;
    let auth: StubUpstream;
    let gateway: GatewayProcess;
    beforeAll(async () => {
      receiver = await startOtlpReceiver();
      auth = await startStubUpstream({ name: 'auth' });
      gateway = await startGateway(
        {
          AUTH_SERVICE_URL: auth.url,
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
          ...QUICK_EXPORT,
          ...tlsEnv(pki.certs.leaf),
        },
        { tls: { ca: pki.certs.ca.pem } },
      );
    });
    afterAll(async () => {
      await gateway?.stop();
      await Promise.all([auth?.close(), receiver?.close()]);
    });

    it('traces an HTTP/2 request as network.protocol.version 2 and an HTTP/1.1 one as 1.1, both https', async () => {
      const traceId = hex(16);
      const session = await openSession(gateway.url, pki.certs.ca.pem);
      try {
        const res = await h2Request(session, '/api/auth/over-h2', {
          headers: {
            'x-request-id': 'h2-traced',
            traceparent: `00-${traceId}-${hex(8)}-01`,
            tracestate: 'k=v',
          },
        });
        expect(res.status).toBe(200);
      } finally {
        await closeSession(session);
      }
      const h1 = await httpRequest(`${gateway.url}/api/auth/over-h1`, {
        ca: pki.certs.ca.pem,
        headers: { 'x-request-id': 'h1-traced' },
      });
      expect(h1.status).toBe(200);
      const h2 = await treeOf(receiver, 'h2-traced');
      expect(h2.server).toMatchObject({ traceId, traceState: 'k=v' });
      expect(h2.server.attributes).toMatchObject({
        'network.protocol.version': '2',
        'url.scheme': 'https',
        'url.path': '/api/auth/over-h2',
      });
      const upstream = await auth.waitFor((r) => r.headers['x-request-id'] === 'h2-traced');
      expect(traceparentOf(upstream)).toBe(`00-${traceId}-${h2.clients[0].spanId}-01`);
      expect(upstream.headers.tracestate).toBe('k=v');
      const overH1 = await treeOf(receiver, 'h1-traced');
      expect(overH1.server.attributes).toMatchObject({
        'network.protocol.version': '1.1',
        'url.scheme': 'https',
      });
    });
  });

  describe('a collector that fails never delays or fails a request', () => {
    it.each<[string, ReceiverMode | 'dead']>([
      ['down (nothing listens)', 'dead'],
      ['slow (never answers)', 'hang'],
      ['refusing (503)', 'unavailable'],
    ])(
      '%s: every request 200, the spans dropped and counted',
      async (_title, mode) => {
        const receiver = mode === 'dead' ? undefined : await startOtlpReceiver(mode);
        const endpoint = receiver?.url ?? `http://127.0.0.1:${await closedPort()}`;
        const auth = await startStubUpstream({ name: 'auth' });
        const metricsPort = await closedPort();
        const gateway = await startGateway({
          AUTH_SERVICE_URL: auth.url,
          METRICS_PORT: String(metricsPort),
          OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
          OTEL_EXPORTER_OTLP_TIMEOUT: '1000',
          OTEL_BSP_MAX_QUEUE_SIZE: '4',
          OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2',
          ...QUICK_EXPORT,
        });
        try {
          const statuses: number[] = [];
          for (let i = 0; i < 60; i++) {
            statuses.push((await httpRequest(`${gateway.url}/api/auth/load-${i}`)).status);
          }
          expect(statuses).toEqual(Array(60).fill(200));
          // Both the spans lost and the failed export requests are counted.
          const counted = async () => {
            const text = (
              await httpRequest(`http://127.0.0.1:${metricsPort}/metrics`)
            ).body.toString();
            const dropped =
              sample(text, 'helix_gateway_spans_dropped_total', '{reason="queue_full"}') +
              sample(text, 'helix_gateway_spans_dropped_total', '{reason="export_failed"}');
            return dropped > 0 && sample(text, 'helix_gateway_span_exports_failed_total') > 0;
          };
          await until(counted, 15_000);
          expect(gateway.output()).toContain(
            'span export failed; spans are dropped until the collector answers',
          );
          expect(gateway.output()).not.toMatch(/unhandled|uncaught/i);
        } finally {
          await gateway.stop(2000);
          await Promise.all([auth.close(), receiver?.close()]);
        }
      },
      60_000,
    );
  });

  it('flushes the spans still queued when it drains on SIGTERM', async () => {
    const receiver = await startOtlpReceiver();
    const auth = await startStubUpstream({ name: 'auth' });
    const gateway = await startGateway({
      AUTH_SERVICE_URL: auth.url,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      // Far beyond the test: only the shutdown's flush can export them.
      OTEL_BSP_SCHEDULE_DELAY: '600000',
      SHUTDOWN_TIMEOUT_MS: '5000',
    });
    try {
      expect(
        (
          await httpRequest(`${gateway.url}/api/auth/last`, {
            headers: { 'x-request-id': 'flushed' },
          })
        ).status,
      ).toBe(200);
      expect(receiver.spans).toEqual([]);
      const exited = once(gateway.child, 'exit');
      gateway.child.kill('SIGTERM');
      expect((await exited)[0]).toBe(0);
      expect(
        receiver.spans.filter((s) => s.attributes['helix.request_id'] === 'flushed'),
      ).toHaveLength(1);
      expect(receiver.spans).toHaveLength(2);
    } finally {
      await gateway.stop();
      await Promise.all([auth.close(), receiver.close()]);
    }
  });

  it('exports spans from both workers with GATEWAY_WORKERS=2, each its own service.instance.id', async () => {
    const receiver = await startOtlpReceiver();
    const auth = await startStubUpstream({ name: 'auth' });
    const gateway = await startGateway({
      AUTH_SERVICE_URL: auth.url,
      GATEWAY_WORKERS: '2',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      ...QUICK_EXPORT,
    });
    try {
      await until(async () => (gateway.output().match(/listening on/g) ?? []).length >= 2, 10_000);
      const instances = () => new Set(receiver.spans.map((s) => s.resource['service.instance.id']));
      // A new connection per request: the primary hands connections to the workers in turn.
      for (let i = 0; i < 40 && instances().size < 2; i++) {
        expect(
          (await httpRequest(`${gateway.url}/api/auth/worker-${i}`, { agent: false })).status,
        ).toBe(200);
        if (i >= 3) await until(async () => receiver.spans.length > 0, 5000);
      }
      await until(async () => instances().size >= 2, 5000);
      expect(instances().size).toBe(2);
    } finally {
      await gateway.stop();
      await Promise.all([auth.close(), receiver.close()]);
    }
  }, 60_000);
});
