import autocannon from 'autocannon';

/** One autocannon run against one target. Latencies in milliseconds, as autocannon gives them. */
export interface SaturationRun {
  requestsPerSecond: number;
  /** Requests answered in the run, whatever their status. */
  requests: number;
  p50Ms: number;
  p97_5Ms: number;
  p99Ms: number;
  /** Connection errors, timeouts included. */
  errors: number;
  non2xx: number;
}

/** Closed-loop saturation: `connections` keep-alive connections, each sending as fast as it can. */
export async function runSaturation(
  url: string,
  headers: Record<string, string>,
  connections: number,
  durationSeconds: number,
): Promise<SaturationRun> {
  const result = await autocannon({ url, headers, connections, duration: durationSeconds });
  return {
    requestsPerSecond: result.requests.mean,
    requests: result.requests.total,
    p50Ms: result.latency.p50,
    p97_5Ms: result.latency.p97_5,
    p99Ms: result.latency.p99,
    errors: result.errors,
    non2xx: result.non2xx,
  };
}
