/** The nearest-rank percentile `p` (0–100) of ascending `sorted`; NaN when it is empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export function mean(values: readonly number[]): number {
  return values.reduce((sum, v) => sum + v, 0) / values.length;
}

/** Milliseconds rounded to 10 µs, the resolution of every latency the benchmark reports. */
export function roundMs(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/** Nanoseconds to milliseconds, rounded to 10 µs. */
export function nsToMs(ns: number): number {
  return roundMs(ns / 1e6);
}

/** The middle value of `values` (the mean of the middle two when their number is even). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
