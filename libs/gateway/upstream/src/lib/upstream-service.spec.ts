import { RetryBudget, UpstreamService } from './upstream-service';

const urls = ['http://127.0.0.1:1', 'http://127.0.0.1:2', 'http://127.0.0.1:3'].map(
  (u) => new URL(u),
);
const outlier = { consecutiveFailures: 3, ejectionMs: 1000 };

function service(balance: 'round-robin' | 'least-in-flight' = 'round-robin', maxInFlight = 1024) {
  return new UpstreamService('auth', urls, balance, 4000, outlier, 20, maxInFlight);
}

describe('UpstreamService', () => {
  afterEach(() => jest.useRealTimers());

  it('makes each address of a discovered name an instance, keeping those that stay', () => {
    const target = new URL('http://auth.default.svc.cluster.local.:3001');
    const s = new UpstreamService('auth', [target], 'round-robin', 4000, outlier, 20, 1024, 'dns');
    expect(s.discovered).toEqual([target]);
    // Until the first answer, the name itself is the one instance.
    expect(s.instances.map((i) => i.url.host)).toEqual(['auth.default.svc.cluster.local.:3001']);

    expect(s.useAddresses(target, ['10.0.0.1', '10.0.0.2'])).toEqual({ added: 2, removed: 1 });
    const [first, second] = s.instances;
    expect(s.instances.map((i) => [i.index, i.url.host, i.host])).toEqual([
      [0, '10.0.0.1:3001', 'auth.default.svc.cluster.local:3001'],
      [1, '10.0.0.2:3001', 'auth.default.svc.cluster.local:3001'],
    ]);
    first.reportFailure(0);

    const busy = s.pick(0);
    expect(busy).toBe(first);
    expect(s.useAddresses(target, ['10.0.0.2', 'fd00::3'])).toEqual({ added: 1, removed: 1 });
    // The one that stayed is the same instance (its pools and state); the one that left takes
    // no new request, and the new one is reached by its bracketed IPv6 address.
    expect(s.instances[0]).toBe(second);
    expect(s.instances[1].url.host).toBe('[fd00::3]:3001');
    expect(first.isAvailable(0)).toBe(false);
    expect(s.inFlight).toBe(1);
    busy?.release();
    expect(s.inFlight).toBe(0);
  });

  it('never discovers a target given by address', () => {
    const s = new UpstreamService('auth', urls, 'round-robin', 4000, outlier, 20, 1024, 'dns');
    expect(s.discovered).toEqual([]);
  });

  it('balances round-robin, skipping what it is told to avoid', () => {
    const s = service();
    const picks = Array.from({ length: 4 }, () => s.pick(0)?.index);
    expect(picks).toEqual([0, 1, 2, 0]);
    expect(s.pick(0, s.instances[1])?.index).toBe(2);
    // The retry did not move the rotation.
    expect(s.pick(0)?.index).toBe(1);
  });

  it('counts requests in flight across its instances against its cap, and frees a slot on release', () => {
    const s = service('round-robin', 2);
    const a = s.pick(0);
    expect(s.atCapacity()).toBe(false);
    const b = s.pick(0);
    expect([a?.index, b?.index]).toEqual([0, 1]);
    expect(s.inFlight).toBe(2);
    expect(s.atCapacity()).toBe(true);
    a?.release();
    expect(s.inFlight).toBe(1);
    expect(s.atCapacity()).toBe(false);
  });

  it('balances least-in-flight', () => {
    const s = service('least-in-flight');
    const a = s.pick(0);
    const b = s.pick(0);
    expect([a?.index, b?.index]).toEqual([0, 1]);
    a?.release();
    // 0 and 2 are idle, 1 is busy: the next idle one after the last pick.
    expect(s.pick(0)?.index).toBe(2);
    expect(s.pick(0)?.index).toBe(0);
  });

  it('ejects an instance after consecutive failures, lets one probe through after the back-off, and re-admits it on success', () => {
    const s = service();
    const [first] = s.instances;
    expect([first.reportFailure(0), first.reportFailure(0), first.reportFailure(0)]).toEqual([
      false,
      false,
      true,
    ]);
    expect(Array.from({ length: 4 }, () => s.pick(500)?.index)).toEqual([1, 2, 1, 2]);
    // Back-off over: one probe at a time.
    expect(first.isAvailable(1000)).toBe(true);
    first.acquire();
    expect(first.isAvailable(1000)).toBe(false);
    expect(first.reportSuccess()).toBe(true);
    expect(first.isAvailable(1000)).toBe(true);
  });

  it('doubles the ejection when the probe fails', () => {
    const s = service();
    const [first] = s.instances;
    for (let i = 0; i < 3; i++) first.reportFailure(0);
    expect(first.ejectedUntil).toBe(1000);
    first.acquire();
    expect(first.reportFailure(1000)).toBe(true);
    expect(first.ejectedUntil).toBe(3000);
  });

  it('has nothing to offer when every instance is ejected or down', () => {
    const s = service();
    s.instances[0].health = 'down';
    for (const instance of s.instances.slice(1))
      for (let i = 0; i < 3; i++) instance.reportFailure(0);
    expect(s.pick(10)).toBeUndefined();
  });

  it('applies active-check thresholds', () => {
    const [instance] = service().instances;
    expect(instance.recordCheck(true, 2, 2)).toBe(true);
    expect(instance.health).toBe('up');
    expect(instance.recordCheck(false, 2, 2)).toBe(false);
    expect(instance.recordCheck(false, 2, 2)).toBe(true);
    expect(instance.health).toBe('down');
    expect(instance.recordCheck(true, 2, 2)).toBe(false);
    expect(instance.recordCheck(true, 2, 2)).toBe(true);
    expect(instance.health).toBe('up');
  });
});

describe('RetryBudget', () => {
  it('allows retries up to the percentage of recent requests, at least three', () => {
    const budget = new RetryBudget(20);
    for (let i = 0; i < 100; i++) budget.recordRequest(5000);
    const granted = Array.from({ length: 30 }, () => budget.tryRetry(5000)).filter(Boolean).length;
    expect(granted).toBe(20);
    const quiet = new RetryBudget(20);
    expect(Array.from({ length: 5 }, () => quiet.tryRetry(0)).filter(Boolean).length).toBe(3);
  });

  it('forgets requests and retries older than ten seconds', () => {
    const budget = new RetryBudget(20);
    for (let i = 0; i < 100; i++) budget.recordRequest(0);
    for (let i = 0; i < 20; i++) budget.tryRetry(0);
    expect(budget.tryRetry(5000)).toBe(false);
    expect(budget.tryRetry(11_000)).toBe(true);
  });
});
