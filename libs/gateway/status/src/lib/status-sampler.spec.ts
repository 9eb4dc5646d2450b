import { GatewayMetrics } from '@helix/gateway-observability';
import { type LiveState, StatusBoard } from './status-board';
import { StatusSampler, type StatusTick } from './status-sampler';

function live(health: 'up' | 'down', inFlight: number, draining = false): LiveState {
  return {
    version: '1.2.3',
    draining,
    overloaded: false,
    routes: [
      { prefix: '/api/auth', service: 'auth' },
      { prefix: '/api/files', service: 'file' },
    ],
    services: [
      {
        name: 'auth',
        instances: [
          {
            instance: 0,
            address: '10.0.0.1:3001',
            health,
            ejected: false,
            inFlight,
            failuresInARow: health === 'down' ? 3 : 0,
          },
        ],
      },
    ],
  };
}

function worker(state: LiveState): { metrics: GatewayMetrics; board: StatusBoard } {
  const metrics = new GatewayMetrics();
  const board = new StatusBoard(metrics);
  board.useLiveState(() => state);
  return { metrics, board };
}

function answer(m: GatewayMetrics, route: string, cls: string, seconds: number, n: number) {
  for (let i = 0; i < n; i++) {
    m.requests.labels(route, 'GET', cls).inc();
    m.requestDuration.labels(route, 'GET', cls).observe(seconds);
  }
}

describe('StatusSampler', () => {
  let now: number;
  const clock = () => now;
  const failOnError = (err: Error) => {
    throw err;
  };

  beforeEach(() => {
    now = 1_800_000_000_000;
  });

  it('turns the request counter and duration histogram into rates, error rate and quantiles', async () => {
    const { metrics, board } = worker(live('up', 0));
    const sampler = new StatusSampler(async () => [await board.read()], failOnError, clock);
    const ticks: StatusTick[] = [];
    sampler.subscribe((tick) => ticks.push(tick));

    await sampler.sample();
    expect(ticks[0].point).toEqual({});
    // 10 fast answers (in the 1–2.5 ms bucket) and 2 slow 5xx (in 100–250 ms).
    answer(metrics, '/api/auth', '2xx', 0.002, 10);
    answer(metrics, '/api/auth', '5xx', 0.2, 2);
    metrics.inFlight.set(4);
    now += 1000;
    await sampler.sample();

    const snapshot = sampler.snapshot();
    expect(snapshot?.gateway).toEqual(
      expect.objectContaining({
        version: '1.2.3',
        workers: 1,
        inFlight: 4,
        draining: false,
        overloaded: false,
      }),
    );
    const auth = snapshot?.routes[0];
    expect(auth).toEqual(
      expect.objectContaining({ prefix: '/api/auth', service: 'auth', requests: 12, errors: 2 }),
    );
    expect(auth?.reqRate).toBeCloseTo(12, 9);
    expect(auth?.errorRate).toBeCloseTo(2 / 12, 9);
    // Rank 6 of 12 is 6 of the 10 in (1, 2.5] ms; rank 11.88 is 1.88 of the 2 in (100, 250].
    expect(auth?.p50Ms).toBeCloseTo(1.9, 6);
    expect(auth?.p99Ms).toBeCloseTo(241, 6);
    expect(snapshot?.routes[1]).toEqual({
      prefix: '/api/files',
      service: 'file',
      requests: 0,
      errors: 0,
      reqRate: 0,
      errorRate: null,
      p50Ms: null,
      p99Ms: null,
    });
    expect(snapshot?.series['/api/auth']).toEqual({
      t: [now],
      rps: [12],
      errorRate: [expect.closeTo(2 / 12, 9)],
      p99Ms: [expect.closeTo(241, 6)],
    });
    expect(ticks[1].point['/api/auth']).toEqual([
      12,
      expect.closeTo(2 / 12, 9),
      expect.closeTo(241, 6),
    ]);

    // A quiet second: no requests, so no error rate and no latency, a gap in those charts.
    now += 1000;
    await sampler.sample();
    expect(ticks[2].point['/api/auth']).toEqual([0, null, null]);
    // The table's rate is over the last 10 s, its latency over the last minute.
    expect(sampler.snapshot()?.routes[0].reqRate).toBeCloseTo(6, 9);
    expect(sampler.snapshot()?.routes[0].p99Ms).toBeCloseTo(241, 6);
  });

  it('forgets the latency of answers older than a minute', async () => {
    const { metrics, board } = worker(live('up', 0));
    const sampler = new StatusSampler(async () => [await board.read()], failOnError, clock);
    await sampler.sample();
    answer(metrics, '/api/auth', '2xx', 0.2, 5);
    for (let s = 0; s < 62; s++) {
      now += 1000;
      await sampler.sample();
    }
    const auth = sampler.snapshot()?.routes[0];
    expect(auth).toEqual(
      expect.objectContaining({ requests: 5, reqRate: 0, errorRate: null, p99Ms: null }),
    );
    expect(sampler.snapshot()?.series['/api/auth'].t).toHaveLength(62);
  });

  it("adds up the workers' figures, as the primary's /metrics does", async () => {
    const a = worker(live('up', 1));
    const b = worker(live('down', 2, true));
    const sampler = new StatusSampler(
      async () => Promise.all([a.board.read(), b.board.read()]),
      failOnError,
      clock,
    );
    await sampler.sample();
    answer(a.metrics, '/api/auth', '2xx', 0.002, 3);
    answer(b.metrics, '/api/auth', '2xx', 0.002, 4);
    answer(b.metrics, '/api/auth', '5xx', 0.002, 1);
    a.metrics.upstreamErrors.labels('auth', 'refused').inc(2);
    b.metrics.upstreamErrors.labels('auth', 'timeout').inc(1);
    a.board.noteFailure({
      time: now - 20,
      route: '/api/auth',
      service: 'auth',
      instance: 0,
      code: 'refused',
      requestId: 'older',
    });
    b.board.noteFailure({
      time: now - 10,
      route: '/api/auth',
      service: 'auth',
      instance: 0,
      code: 'timeout',
      requestId: 'newer',
    });
    now += 1000;
    await sampler.sample();

    const snapshot = sampler.snapshot();
    expect(snapshot?.gateway.workers).toBe(2);
    expect(snapshot?.gateway.draining).toBe(true);
    expect(snapshot?.routes[0]).toEqual(expect.objectContaining({ requests: 8, errors: 1 }));
    expect(snapshot?.services).toEqual([
      {
        name: 'auth',
        inFlight: 3,
        failures: 3,
        instances: [
          {
            instance: 0,
            address: '10.0.0.1:3001',
            health: 'down',
            ejected: false,
            inFlight: 3,
            failuresInARow: 3,
          },
        ],
      },
    ]);
    expect(snapshot?.failures.map((f) => f.requestId)).toEqual(['newer', 'older']);
  });

  it('drops the series of a route the table no longer has', async () => {
    let state = live('up', 0);
    const { board } = worker(state);
    board.useLiveState(() => state);
    const sampler = new StatusSampler(async () => [await board.read()], failOnError, clock);
    await sampler.sample();
    now += 1000;
    await sampler.sample();
    expect(Object.keys(sampler.snapshot()?.series ?? {})).toEqual(['/api/auth', '/api/files']);
    state = { ...state, routes: [state.routes[0]] };
    now += 1000;
    await sampler.sample();
    expect(Object.keys(sampler.snapshot()?.series ?? {})).toEqual(['/api/auth']);
  });

  it('keeps only the last 10 failures of a process', () => {
    const { board } = worker(live('up', 0));
    for (let i = 0; i < 25; i++) {
      board.noteFailure({
        time: i,
        route: '/api/auth',
        service: 'auth',
        instance: 0,
        code: 'reset',
        requestId: `r${i}`,
      });
    }
    return board.read().then((reading) => {
      expect(reading.failures.map((f) => f.requestId)).toEqual(
        Array.from({ length: 10 }, (_, i) => `r${i + 15}`),
      );
    });
  });
});
