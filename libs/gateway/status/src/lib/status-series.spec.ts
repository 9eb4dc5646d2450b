import { bucketsBetween, PointRing, quantile } from './status-series';

const bounds = [0.001, 0.01, 0.1, Infinity];

describe('quantile', () => {
  it('is undefined without observations', () => {
    expect(quantile(0.99, { bounds, counts: [0, 0, 0, 0] })).toBeUndefined();
  });

  it('interpolates linearly inside the bucket, as histogram_quantile does', () => {
    // 100 observations: 50 ≤ 1 ms, 40 in (1, 10] ms, 10 in (10, 100] ms.
    const counts = [50, 90, 100, 100];
    expect(quantile(0.5, { bounds, counts })).toBeCloseTo(0.001, 12);
    // Rank 75 is 25 of the 40 in (0.001, 0.01]: 0.001 + 0.009 × 25/40.
    expect(quantile(0.75, { bounds, counts })).toBeCloseTo(0.006625, 12);
    // Rank 99 is 9 of the 10 in (0.01, 0.1].
    expect(quantile(0.99, { bounds, counts })).toBeCloseTo(0.091, 12);
    // The first bucket interpolates from 0.
    expect(quantile(0.1, { bounds, counts })).toBeCloseTo(0.0002, 12);
  });

  it('gives the highest finite bound when the rank falls in +Inf', () => {
    expect(quantile(0.99, { bounds, counts: [0, 0, 1, 10] })).toBe(0.1);
  });
});

describe('bucketsBetween', () => {
  it('subtracts the earlier reading bucket by bucket', () => {
    expect(
      bucketsBetween({ bounds, counts: [1, 2, 3, 3] }, { bounds, counts: [4, 6, 9, 10] }),
    ).toEqual({ bounds, counts: [3, 4, 6, 7] });
  });

  it('counts from zero after a reset (a restarted worker), never negative', () => {
    expect(
      bucketsBetween({ bounds, counts: [5, 9, 9, 9] }, { bounds, counts: [1, 2, 2, 12] }),
    ).toEqual({ bounds, counts: [0, 0, 0, 3] });
  });

  it('takes the later reading whole when there is no earlier one', () => {
    const later = { bounds, counts: [1, 1, 1, 1] };
    expect(bucketsBetween(undefined, later)).toBe(later);
  });
});

describe('PointRing', () => {
  it('keeps the last `capacity` points, oldest first, with gaps as null', () => {
    const ring = new PointRing(3, ['a', 'b'] as const);
    expect(ring.toJSON()).toEqual({ t: [], a: [], b: [] });
    ring.push(1, { a: 10, b: undefined });
    ring.push(2, { a: 20, b: 2 });
    expect(ring.toJSON()).toEqual({ t: [1, 2], a: [10, 20], b: [null, 2] });
    ring.push(3, { a: 30, b: 3 });
    ring.push(4, { a: 40, b: 4 });
    ring.push(5, { a: undefined, b: 5 });
    expect(ring.length).toBe(3);
    expect(ring.toJSON()).toEqual({ t: [3, 4, 5], a: [30, 40, null], b: [3, 4, 5] });
  });

  it('holds 15 minutes of seconds in fixed memory however long it runs', () => {
    const ring = new PointRing(900, ['v'] as const);
    for (let s = 0; s < 10_000; s++) ring.push(s, { v: s });
    const json = ring.toJSON();
    expect(json.t).toHaveLength(900);
    expect(json.t[0]).toBe(9100);
    expect(json.v[899]).toBe(9999);
  });
});
