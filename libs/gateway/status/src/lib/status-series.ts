/**
 * The arithmetic behind the status page, kept pure so its spec can check it exactly: quantiles
 * from histogram buckets (as Prometheus's `histogram_quantile` computes them) and a fixed-size
 * ring of per-second points.
 */

/** Cumulative bucket counts of one histogram: `bounds[i]` is `le`, the last bound `Infinity`. */
export interface Buckets {
  readonly bounds: readonly number[];
  readonly counts: readonly number[];
}

/**
 * The q-quantile of cumulative buckets, in the buckets' unit, or undefined with no
 * observations. Linear within the bucket it falls in, as `histogram_quantile`; in the `+Inf`
 * bucket it is the highest finite bound.
 */
export function quantile(q: number, { bounds, counts }: Buckets): number | undefined {
  const total = counts[counts.length - 1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let i = 0;
  while (i < counts.length - 1 && counts[i] < rank) i++;
  if (bounds[i] === Infinity) return bounds[i - 1] ?? 0;
  const lower = i === 0 ? 0 : bounds[i - 1];
  const below = i === 0 ? 0 : counts[i - 1];
  const inBucket = counts[i] - below;
  return inBucket === 0 ? lower : lower + ((bounds[i] - lower) * (rank - below)) / inBucket;
}

/**
 * `later - earlier`, bucket by bucket: the observations between two readings. A count that went
 * down (a worker restarted with fresh counters) counts from zero instead of going negative.
 */
export function bucketsBetween(earlier: Buckets | undefined, later: Buckets): Buckets {
  if (!earlier || earlier.counts.length !== later.counts.length) return later;
  const counts = later.counts.map((c, i) => Math.max(0, c - earlier.counts[i]));
  // Clamping may break monotonicity; cumulative counts never decrease.
  for (let i = 1; i < counts.length; i++) counts[i] = Math.max(counts[i], counts[i - 1]);
  return { bounds: later.bounds, counts };
}

/**
 * The last `capacity` values of a few named figures, one column each, written once a second.
 * Memory is fixed at construction: `capacity × columns` numbers, whatever runs how long.
 */
export class PointRing<K extends string> {
  private readonly columns: Record<K, Float64Array>;
  private readonly times: Float64Array;
  private next = 0;
  private size = 0;

  constructor(
    readonly capacity: number,
    names: readonly K[],
  ) {
    this.times = new Float64Array(capacity);
    this.columns = Object.fromEntries(
      names.map((name) => [name, new Float64Array(capacity)]),
    ) as Record<K, Float64Array>;
  }

  get length(): number {
    return this.size;
  }

  /** Adds a point; an undefined figure (no requests that second) is kept as a gap. */
  push(time: number, values: Record<K, number | undefined>): void {
    this.times[this.next] = time;
    for (const name of Object.keys(this.columns) as K[]) {
      this.columns[name][this.next] = values[name] ?? NaN;
    }
    this.next = (this.next + 1) % this.capacity;
    this.size = Math.min(this.size + 1, this.capacity);
  }

  /** The points, oldest first, with gaps as null (as JSON carries them). */
  toJSON(): { t: number[] } & Record<K, (number | null)[]> {
    const start = (this.next - this.size + this.capacity) % this.capacity;
    const order = Array.from({ length: this.size }, (_, i) => (start + i) % this.capacity);
    const out: Record<string, (number | null)[]> = { t: order.map((i) => this.times[i]) };
    for (const name of Object.keys(this.columns) as K[]) {
      const column = this.columns[name];
      out[name] = order.map((i) => (Number.isNaN(column[i]) ? null : column[i]));
    }
    return out as { t: number[] } & Record<K, (number | null)[]>;
  }
}
