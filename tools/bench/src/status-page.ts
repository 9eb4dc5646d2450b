// The status-page phase of `npm run bench`: the gateway at saturation with the status page
// closed and with it open (a client on `/status/events`, the stream the page listens to, as a
// browser tab holds it), alternating the order over the rounds. The sampler runs once a second
// either way; the open page adds the serialisation and the write of every update.
import { setTimeout as sleep } from 'node:timers/promises';
import { type ProcessGroup, reserveFreePort, waitForOk } from './processes.ts';
import { runSaturation, type SaturationRun } from './saturation.ts';
import { gatewayEnvironment, HEADERS, PATH, spawnGateway, START_TIMEOUT_MS } from './targets.ts';

export interface StatusPageRounds {
  closed: SaturationRun[];
  open: SaturationRun[];
  /** Updates the client received during the measured runs with the page open, in all. */
  updates: number;
  /** The longest wait between two updates during a measured run: the page stays live under load. */
  maxUpdateGapMs: number;
}

/** A client on the page's event stream, counting its updates until closed. */
function openStatusPage(metricsUrl: string): {
  mark(): void;
  readonly updates: number;
  readonly maxGapMs: number;
  close(): Promise<void>;
} {
  const abort = new AbortController();
  let updates = 0;
  let last = 0;
  let maxGapMs = 0;
  const reading = (async () => {
    // The page first, as a browser loads it, then its stream.
    await (await fetch(`${metricsUrl}/status`, { signal: abort.signal })).text();
    const res = await fetch(`${metricsUrl}/status/events`, { signal: abort.signal });
    if (res.status !== 200 || !res.body) throw new Error(`/status/events answered ${res.status}`);
    const decoder = new TextDecoder();
    let pending = '';
    for await (const chunk of res.body) {
      pending += decoder.decode(chunk, { stream: true });
      // An event ends with a blank line; a chunk may end inside one.
      const events = pending.split('\n\n');
      pending = events.pop() ?? '';
      for (const event of events) {
        if (!event.startsWith('event: tick\n')) continue;
        const now = performance.now();
        if (last !== 0) maxGapMs = Math.max(maxGapMs, now - last);
        last = now;
        updates++;
      }
    }
  })().catch((err: Error) => {
    if (!abort.signal.aborted) throw err;
  });
  return {
    /** Starts counting from now: the warm-up's updates and gaps do not count. */
    mark() {
      updates = 0;
      maxGapMs = 0;
      last = performance.now();
    },
    get updates() {
      return updates;
    },
    get maxGapMs() {
      return maxGapMs;
    },
    async close() {
      abort.abort();
      await reading;
    },
  };
}

/**
 * Saturates one gateway (the same environment as the main runs) `rounds` times with the page
 * closed and `rounds` times with it open, each after a warm-up.
 */
export async function measureStatusPage(
  group: ProcessGroup,
  upstreamUrl: string,
  options: { rounds: number; seconds: number; warmup: number; connections: number },
  say: (line: string) => void,
): Promise<StatusPageRounds> {
  // The page lives on the metrics port: on here even with BENCH_OBSERVABILITY=off.
  const env: Record<string, string> = {
    ...(await gatewayEnvironment(upstreamUrl)),
    METRICS_PORT: String(await reserveFreePort()),
  };
  const url = `http://127.0.0.1:${env['SERVICE_PORT']}${PATH}`;
  const metricsUrl = `http://127.0.0.1:${env['METRICS_PORT']}`;
  const gateway = spawnGateway(group, env);
  await waitForOk(gateway, `http://127.0.0.1:${env['SERVICE_PORT']}/heartbeat`, START_TIMEOUT_MS);
  const result: StatusPageRounds = { closed: [], open: [], updates: 0, maxUpdateGapMs: 0 };
  const saturate = async (label: 'closed' | 'open', round: number) => {
    const page = label === 'open' ? openStatusPage(metricsUrl) : undefined;
    await runSaturation(url, HEADERS, options.connections, options.warmup);
    page?.mark();
    const run = await runSaturation(url, HEADERS, options.connections, options.seconds);
    result[label].push(run);
    if (page) {
      result.updates += page.updates;
      result.maxUpdateGapMs = Math.max(result.maxUpdateGapMs, page.maxGapMs);
      await page.close();
      if (page.updates === 0) throw new Error('the status page received no update under load');
    }
    say(
      `  round ${round}/${options.rounds} page ${label.padEnd(6)} ${Math.round(run.requestsPerSecond)} req/s, p99 ${run.p99Ms} ms, ${run.errors} errors, ${run.non2xx} non-2xx${page ? `, ${page.updates} updates` : ''}`,
    );
    await sleep(1000);
  };
  for (let round = 1; round <= options.rounds; round++) {
    // Alternating which goes first, so neither always meets a warmer process.
    const order = round % 2 === 1 ? (['closed', 'open'] as const) : (['open', 'closed'] as const);
    for (const label of order) await saturate(label, round);
  }
  await group.stopOne(gateway);
  return result;
}
