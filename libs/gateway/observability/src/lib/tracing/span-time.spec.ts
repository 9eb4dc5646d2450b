import { performance } from 'node:perf_hooks';
import { spanTime } from './gateway-tracer';

const toMs = ([seconds, nanos]: [number, number]): number => seconds * 1000 + nanos / 1e6;

describe('spanTime', () => {
  it('is the monotonic time on the epoch, in whole nanoseconds below a second', () => {
    for (const ms of [0, 0.0004, 1, 999.9999996, 1000, 12_345.678901, performance.now()]) {
      const [seconds, nanos] = spanTime(ms);
      expect(Number.isInteger(seconds) && Number.isInteger(nanos)).toBe(true);
      expect(nanos).toBeGreaterThanOrEqual(0);
      expect(nanos).toBeLessThan(1e9);
      expect(Math.abs(toMs([seconds, nanos]) - (performance.timeOrigin + ms))).toBeLessThan(0.001);
    }
  });

  it('keeps the order of two moments a microsecond apart, made by different spans', () => {
    const a = performance.now();
    const [s1, n1] = spanTime(a);
    const [s2, n2] = spanTime(a + 0.001);
    expect((s2 - s1) * 1e9 + (n2 - n1)).toBeGreaterThanOrEqual(900);
  });
});
