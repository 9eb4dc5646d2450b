import { GatewayMetrics, statusClass } from './gateway-metrics';

describe('statusClass', () => {
  it.each([
    [100, '1xx'],
    [204, '2xx'],
    [399, '3xx'],
    [404, '4xx'],
    [599, '5xx'],
    [99, 'other'],
    [600, 'other'],
  ])('%i → %s', (status, label) => expect(statusClass(status)).toBe(label));
});

describe('GatewayMetrics bound series', () => {
  it('counts and times each label set in its own series, bound once', async () => {
    const metrics = new GatewayMetrics();
    const get = metrics.requestSeriesOf('/api/auth', 'GET', '2xx');
    expect(metrics.requestSeriesOf('/api/auth', 'GET', '2xx')).toBe(get);
    get.requests.inc();
    get.requests.inc();
    get.duration.observe(0.002);
    metrics.requestSeriesOf('/api/auth', 'POST', '2xx').requests.inc();
    metrics.requestSeriesOf('/api/kira', 'GET', '5xx').requests.inc();
    metrics.upstreamDurationOf('auth').observe(0.001);
    expect(metrics.upstreamDurationOf('auth')).toBe(metrics.upstreamDurationOf('auth'));

    const counts = (await metrics.requests.get()).values.map((v) => [v.labels, v.value]);
    expect(counts).toEqual(
      expect.arrayContaining([
        [{ route: '/api/auth', method: 'GET', status_class: '2xx' }, 2],
        [{ route: '/api/auth', method: 'POST', status_class: '2xx' }, 1],
        [{ route: '/api/kira', method: 'GET', status_class: '5xx' }, 1],
      ]),
    );
    expect(counts).toHaveLength(3);
    const text = await metrics.registry.metrics();
    expect(text).toContain(
      'helix_gateway_request_duration_seconds_count{route="/api/auth",method="GET",status_class="2xx"} 1',
    );
    expect(text).toContain('helix_gateway_upstream_duration_seconds_count{service="auth"} 1');
  });
});
