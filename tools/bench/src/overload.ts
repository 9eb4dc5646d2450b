// The overload scenario of `npm run bench`: open-loop load at twice the gateway's measured
// capacity against an upstream with a fixed 20 ms service time and a fixed number of workers,
// with the traffic controls on and then off, beside the same gateway at half its capacity.
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type OpenLoopResult, runOpenLoop } from './open-loop.ts';
import { type ProcessGroup, waitForListeningUrl, waitForOk } from './processes.ts';
import { readRssBytes, sampleMaxRss } from './rss.ts';
import { runSaturation } from './saturation.ts';
import { nsToMs, percentile } from './stats.ts';
import { gatewayEnvironment, HEADERS, spawnGateway, START_TIMEOUT_MS } from './targets.ts';

/** The upstream's fixed service time per request. */
export const SERVICE_TIME_MS = 20;
/**
 * The upstream's workers: its capacity is 64 ÷ 20 ms = 3,200 req/s, well under what the
 * gateway itself can proxy on this path, so twice it overloads the upstream and not the
 * gateway's own CPU, which the load generator shares.
 */
export const UPSTREAM_WORKERS = 64;
const PATH = '/api/auth/work';
const RSS_INTERVAL_MS = 50;
/** Shed while the event loop is this late: the value the Kubernetes ConfigMap sets. */
const OVERLOAD_DELAY_MS = 100;
/**
 * The load generator's connections at most: at twice the capacity an unbounded pool opened
 * thousands and ran out of file descriptors. Requests beyond them queue in the generator, and
 * their latency still counts from their scheduled start.
 */
const MAX_SOCKETS = 400;

export interface OverloadPhase {
  ratePerSecond: number;
  sent: number;
  /** 2xx answers per second of the run. */
  admittedPerSecond: number;
  /** Latency of the admitted (2xx) requests from their scheduled start. */
  p50Ms: number;
  p99Ms: number;
  /** Share of the sent requests answered with something else than 2xx (the 503s of shedding). */
  shedShare: number;
  errors: number;
  unfinished: number;
  sendLagP99Ms: number;
  rssMaxBytes: number;
  rssAfterBytes: number;
}

export interface OverloadRun {
  /** What the traffic controls were set to (empty: their defaults, shedding off). */
  env: Record<string, string>;
  half: OverloadPhase;
  double: OverloadPhase;
}

export interface OverloadFigures {
  serviceTimeMs: number;
  upstreamWorkers: number;
  /** Closed-loop req/s of the gateway on this path, its capacity. */
  capacityPerSecond: number;
  durationSeconds: number;
  controlsOn: OverloadRun;
  controlsOff: OverloadRun;
}

function phaseOf(
  rate: number,
  seconds: number,
  r: OpenLoopResult,
  rssMax: number,
  rssAfter: number,
): OverloadPhase {
  return {
    ratePerSecond: rate,
    sent: r.sent,
    admittedPerSecond: r.ok / seconds,
    p50Ms: nsToMs(percentile(r.latenciesNs, 50)),
    p99Ms: nsToMs(percentile(r.latenciesNs, 99)),
    shedShare: r.sent === 0 ? 0 : r.non2xx / r.sent,
    errors: r.errors,
    unfinished: r.unfinished,
    sendLagP99Ms: nsToMs(percentile(r.sendLagNs, 99)),
    rssMaxBytes: rssMax,
    rssAfterBytes: rssAfter,
  };
}

async function startGateway(
  group: ProcessGroup,
  upstreamUrl: string,
  controls: Record<string, string>,
): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const env = { ...(await gatewayEnvironment(upstreamUrl)), ...controls };
  const url = `http://127.0.0.1:${env['SERVICE_PORT']}`;
  const gateway = spawnGateway(group, env);
  await waitForOk(gateway, `${url}/heartbeat`, START_TIMEOUT_MS);
  return { url, pid: gateway.child.pid as number, stop: () => group.stopOne(gateway) };
}

async function loadPhase(
  url: string,
  pid: number,
  rate: number,
  seconds: number,
): Promise<OverloadPhase> {
  const sampler = sampleMaxRss(pid, RSS_INTERVAL_MS);
  const result = await runOpenLoop(`${url}${PATH}`, HEADERS, rate, seconds, MAX_SOCKETS);
  const rssMax = sampler.stop();
  await sleep(1000);
  return phaseOf(rate, seconds, result, rssMax, readRssBytes(pid));
}

/**
 * Measures the gateway's capacity on the 20 ms path with the controls off, then runs each
 * configuration at half and at twice that rate. With the controls on, the service's cap is
 * what Little's law says the capacity needs in flight (capacity × service time), with half
 * again as headroom, and overload shedding starts at an event-loop delay of 100 ms (the ConfigMap's value).
 */
export async function measureOverload(
  group: ProcessGroup,
  options: { seconds: number; connections: number; warmup: number },
  say: (line: string) => void,
): Promise<OverloadFigures> {
  const upstream = group.spawn(
    'fixed-capacity upstream',
    resolve(import.meta.dirname, 'fixed-capacity-upstream.ts'),
    { UPSTREAM_WORKERS: String(UPSTREAM_WORKERS), SERVICE_TIME_MS: String(SERVICE_TIME_MS) },
    import.meta.dirname,
  );
  const upstreamUrl = await waitForListeningUrl(upstream, START_TIMEOUT_MS);
  const off = await startGateway(group, upstreamUrl, {});
  await runSaturation(`${off.url}${PATH}`, HEADERS, options.connections, options.warmup);
  const capacity = (
    await runSaturation(`${off.url}${PATH}`, HEADERS, options.connections, options.seconds)
  ).requestsPerSecond;
  say(`  capacity on ${PATH}: ${Math.round(capacity)} req/s`);
  const runFor = async (gateway: typeof off, env: Record<string, string>, name: string) => {
    // Each gateway warms up the same way first (the JIT, the pools), at half the capacity.
    await runOpenLoop(`${gateway.url}${PATH}`, HEADERS, capacity / 2, options.warmup, MAX_SOCKETS);
    await sleep(1000);
    const half = await loadPhase(gateway.url, gateway.pid, capacity / 2, options.seconds);
    const double = await loadPhase(gateway.url, gateway.pid, capacity * 2, options.seconds);
    say(
      `  ${name}: half ${Math.round(half.admittedPerSecond)} req/s p99 ${half.p99Ms} ms · 2× ${Math.round(double.admittedPerSecond)} admitted/s p99 ${double.p99Ms} ms, ${(double.shedShare * 100).toFixed(1)}% shed`,
    );
    return { env, half, double };
  };
  const controlsOff = await runFor(off, {}, 'controls off');
  await off.stop();
  const controls = {
    UPSTREAM_MAX_IN_FLIGHT: String(Math.ceil((capacity * SERVICE_TIME_MS * 1.5) / 1000)),
    OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: String(OVERLOAD_DELAY_MS),
  };
  const on = await startGateway(group, upstreamUrl, controls);
  const controlsOn = await runFor(on, controls, 'controls on ');
  await on.stop();
  await group.stopOne(upstream);
  return {
    serviceTimeMs: SERVICE_TIME_MS,
    upstreamWorkers: UPSTREAM_WORKERS,
    capacityPerSecond: capacity,
    durationSeconds: options.seconds,
    controlsOn,
    controlsOff,
  };
}
