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
