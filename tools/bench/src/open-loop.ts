import { Pool } from 'undici';
import { setTimeout as sleep } from 'node:timers/promises';

const DRAIN_TIMEOUT_MS = 5000;

export interface OpenLoopResult {
  /** Requests sent: one per scheduled slot. */
  sent: number;
  /** Requests answered 2xx, whose latencies are in `latenciesNs`. */
  ok: number;
  non2xx: number;
  errors: number;
  /** Still unanswered when the run ended (counted in neither `ok` nor `errors`). */
  unfinished: number;
  /** Scheduled start → last response byte, nanoseconds, ascending. */
  latenciesNs: Float64Array;
  /** How late the generator itself sent, nanoseconds, ascending: its own error bar. */
  sendLagNs: Float64Array;
}

/**
 * Sends GET `url` at a fixed rate from a fixed start time, whatever the server does: an open
 * loop. Each request has a scheduled start (`start + i / rate`) and its latency is counted from
 * that time, not from when it was sent, so a stall of the server (or of this loop) is charged
 * to every request that should have gone out during it. A closed loop would wait out the stall
 * and report only one slow request: coordinated omission (Gil Tene, "How NOT to Measure
 * Latency"). The client is an undici pool: with a `node:http` agent at 15,000 req/s the
 * generator itself sent 110 ms late at p99, against 16 ms with undici.
 */
export async function runOpenLoop(
  url: string,
  headers: Record<string, string>,
  ratePerSecond: number,
  durationSeconds: number,
  /** Connections at most; beyond them requests wait in the pool, still timed from their slot. */
  maxSockets = Infinity,
): Promise<OpenLoopResult> {
  const target = new URL(url);
  const pool = new Pool(target.origin, {
    connections: Number.isFinite(maxSockets) ? maxSockets : null,
    pipelining: 1,
  });
  const path = target.pathname + target.search;
  const total = Math.round(ratePerSecond * durationSeconds);
  const intervalNs = 1e9 / ratePerSecond;
  const latencies: number[] = [];
  const sendLags: number[] = [];
  let non2xx = 0;
  let errors = 0;
  let outstanding = 0;

  const send = async (scheduled: bigint): Promise<void> => {
    outstanding += 1;
    try {
      const { statusCode, body } = await pool.request({ path, method: 'GET', headers });
      await body.dump({ limit: Infinity });
      if (statusCode >= 200 && statusCode < 300) {
        latencies.push(Number(process.hrtime.bigint() - scheduled));
      } else {
        non2xx += 1;
      }
    } catch {
      errors += 1;
    } finally {
      outstanding -= 1;
    }
  };

  const start = process.hrtime.bigint();
  let next = 0;
  while (next < total) {
    const now = process.hrtime.bigint();
    for (; next < total; next++) {
      const scheduled = start + BigInt(Math.round(next * intervalNs));
      if (scheduled > now) break;
      sendLags.push(Number(now - scheduled));
      void send(scheduled);
    }
    // A timer fires no sooner than 1 ms later; slots that came due meanwhile go out on the next
    // turn, still measured from their own scheduled time.
    await sleep(1);
  }
  const drainDeadline = performance.now() + DRAIN_TIMEOUT_MS;
  while (outstanding > 0 && performance.now() < drainDeadline) await sleep(1);
  await pool.destroy();

  return {
    sent: total,
    ok: latencies.length,
    non2xx,
    errors,
    unfinished: outstanding,
    latenciesNs: Float64Array.from(latencies).sort(),
    sendLagNs: Float64Array.from(sendLags).sort(),
  };
}

/** Several runs of one target as one: their samples pooled, so percentiles span every round. */
export function mergeOpenLoop(runs: readonly OpenLoopResult[]): OpenLoopResult {
  const pool = (pick: (r: OpenLoopResult) => Float64Array): Float64Array => {
    const all = new Float64Array(runs.reduce((n, r) => n + pick(r).length, 0));
    let offset = 0;
    for (const run of runs) {
      all.set(pick(run), offset);
      offset += pick(run).length;
    }
    return all.sort();
  };
  const sum = (pick: (r: OpenLoopResult) => number): number =>
    runs.reduce((n, r) => n + pick(r), 0);
  return {
    sent: sum((r) => r.sent),
    ok: sum((r) => r.ok),
    non2xx: sum((r) => r.non2xx),
    errors: sum((r) => r.errors),
    unfinished: sum((r) => r.unfinished),
    latenciesNs: pool((r) => r.latenciesNs),
    sendLagNs: pool((r) => r.sendLagNs),
  };
}
