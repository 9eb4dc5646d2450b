// The tracing phase of `npm run bench`: the same gateway with tracing off and with tracing on
// at 100% sampling, exporting over OTLP/HTTP (protobuf) to a local receiver that discards what
// it gets (otlp-sink.ts), saturated in turn round after round, so both meet the same machine.
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ProcessGroup, waitForListeningUrl, waitForOk } from './processes.ts';
import { runSaturation, type SaturationRun } from './saturation.ts';
import { mean } from './stats.ts';
import { gatewayEnvironment, HEADERS, PATH, spawnGateway, START_TIMEOUT_MS } from './targets.ts';

const SETTLE_MS = 1000;

export interface TracingSide {
  requestsPerSecond: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  rounds: SaturationRun[];
}

export interface TracingFigures {
  /** The variables that turn tracing on, beside the gateway's usual benchmark environment. */
  env: Record<string, string>;
  off: TracingSide;
  on: TracingSide;
  /** req/s with tracing on ÷ req/s with it off (the goal: at least 0.9). */
  'on/off': number;
  /** What reached the receiver, and what the gateway dropped (its queue full or an export failed). */
  exports: number;
  exportedBytes: number;
  spansDropped: number;
}

function side(rounds: SaturationRun[]): TracingSide {
  return {
    requestsPerSecond: mean(rounds.map((r) => r.requestsPerSecond)),
    p99Ms: mean(rounds.map((r) => r.p99Ms)),
    errors: rounds.reduce((n, r) => n + r.errors, 0),
    non2xx: rounds.reduce((n, r) => n + r.non2xx, 0),
    rounds,
  };
}

async function startGateway(
  group: ProcessGroup,
  upstreamUrl: string,
  extra: Record<string, string>,
): Promise<{ url: string; metricsUrl: string; stop: () => Promise<void> }> {
  const env = { ...(await gatewayEnvironment(upstreamUrl)), ...extra };
  const url = `http://127.0.0.1:${env['SERVICE_PORT']}`;
  const gateway = spawnGateway(group, env);
  await waitForOk(gateway, `${url}/heartbeat`, START_TIMEOUT_MS);
  return {
    url,
    metricsUrl: `http://127.0.0.1:${env['METRICS_PORT']}/metrics`,
    stop: () => group.stopOne(gateway),
  };
}

/** The sum of helix_gateway_spans_dropped_total over its reasons (0 with metrics off). */
async function droppedSpans(metricsUrl: string): Promise<number> {
  if (metricsUrl.endsWith(':0/metrics')) return 0;
  const text = await (await fetch(metricsUrl)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('helix_gateway_spans_dropped_total{'))
    .reduce((n, line) => n + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

/** The variables of a gateway that traces every request to `endpoint`. */
export function tracingEnvironment(endpoint: string): Record<string, string> {
  return { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_TRACES_SAMPLER: 'always_on' };
}

/** Starts the discarding OTLP receiver; resolves with its URL. */
export async function startOtlpSink(group: ProcessGroup): Promise<string> {
  const sink = group.spawn(
    'otlp sink',
    resolve(import.meta.dirname, 'otlp-sink.ts'),
    {},
    import.meta.dirname,
  );
  return waitForListeningUrl(sink, START_TIMEOUT_MS);
}

export async function measureTracing(
  group: ProcessGroup,
  upstreamUrl: string,
  options: { rounds: number; seconds: number; warmup: number; connections: number },
  say: (line: string) => void,
): Promise<TracingFigures> {
  const sinkUrl = await startOtlpSink(group);
  const env = tracingEnvironment(sinkUrl);
  const off = await startGateway(group, upstreamUrl, {});
  const on = await startGateway(group, upstreamUrl, env);
  const runs: Record<'off' | 'on', SaturationRun[]> = { off: [], on: [] };
  for (let round = 1; round <= options.rounds; round++) {
    for (const [name, gateway] of [
      ['off', off],
      ['on', on],
    ] as const) {
      await sleep(SETTLE_MS);
      const url = `${gateway.url}${PATH}`;
      await runSaturation(url, HEADERS, options.connections, options.warmup);
      const run = await runSaturation(url, HEADERS, options.connections, options.seconds);
      runs[name].push(run);
      say(
        `  round ${round}/${options.rounds} tracing ${name.padEnd(3)} ${Math.round(run.requestsPerSecond)} req/s, p99 ${run.p99Ms} ms, ${run.errors} errors, ${run.non2xx} non-2xx`,
      );
    }
  }
  // The last batch goes out within OTEL_BSP_SCHEDULE_DELAY (5 s by default).
  await sleep(6000);
  const stats = (await (await fetch(`${sinkUrl}/stats`)).json()) as {
    exports: number;
    bytes: number;
  };
  const spansDropped = await droppedSpans(on.metricsUrl);
  await Promise.all([off.stop(), on.stop()]);
  const figures = { off: side(runs.off), on: side(runs.on) };
  return {
    env,
    ...figures,
    'on/off': figures.on.requestsPerSecond / figures.off.requestsPerSecond,
    exports: stats.exports,
    exportedBytes: stats.bytes,
    spansDropped,
  };
}
