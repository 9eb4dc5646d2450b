// The workers phase of `npm run bench`: the gateway with GATEWAY_WORKERS=2 beside the same
// gateway with GATEWAY_WORKERS=1, saturated in turn round after round, so both meet the same
// machine; the CPU of each run is read over the whole process tree, the node:cluster primary and
// its workers.
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { type CpuRun, type CpuSummary, cpuUsedSince, readTreeCpu, summarizeCpu } from './cpu.ts';
import { failure, type ProcessGroup, type ServiceProcess, waitForOk } from './processes.ts';
import { runSaturation, type SaturationRun } from './saturation.ts';
import { mean } from './stats.ts';
import { gatewayEnvironment, HEADERS, PATH, spawnGateway, START_TIMEOUT_MS } from './targets.ts';

export const WORKER_COUNTS = ['1', '2'] as const;
export type WorkerCount = (typeof WORKER_COUNTS)[number];

const SETTLE_MS = 1000;
const POLL_INTERVAL_MS = 20;

export interface WorkersSide {
  requestsPerSecond: number;
  minRequestsPerSecond: number;
  maxRequestsPerSecond: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  /** CPU per answered request over the measured runs: the primary and its workers summed. */
  cpu: CpuSummary;
  rounds: SaturationRun[];
}

export interface WorkersFigures {
  rounds: number;
  durationSeconds: number;
  connections: number;
  /** The cores of the machine, which the load generator and the demo upstream share. */
  cores: number;
  /** Keyed by GATEWAY_WORKERS. */
  runs: Record<WorkerCount, WorkersSide>;
  /** req/s with GATEWAY_WORKERS=2 ÷ req/s with 1. */
  '2/1': number;
  /** CPU per request (all threads) with GATEWAY_WORKERS=2 ÷ with 1. */
  'cpu 2/1': number;
}

/**
 * The first 200 from /heartbeat comes from whichever worker listens first: wait until every
 * worker has said it listens, so no run is measured with one of them still starting.
 */
async function waitForWorkers(gateway: ServiceProcess, workers: number): Promise<void> {
  const deadline = performance.now() + START_TIMEOUT_MS;
  while ((gateway.output().match(/listening on http/g) ?? []).length < workers) {
    if (gateway.child.exitCode !== null)
      throw failure(gateway, `exited with ${gateway.child.exitCode}`);
    if (performance.now() > deadline)
      throw failure(gateway, `had not ${workers} workers listening within ${START_TIMEOUT_MS} ms`);
    await sleep(POLL_INTERVAL_MS);
  }
}

async function startGateway(
  group: ProcessGroup,
  upstreamUrl: string,
  workers: WorkerCount,
): Promise<{ url: string; service: ServiceProcess }> {
  const env: Record<string, string> = {
    ...(await gatewayEnvironment(upstreamUrl)),
    GATEWAY_WORKERS: workers,
  };
  const url = `http://127.0.0.1:${env['SERVICE_PORT']}`;
  const service = spawnGateway(group, env);
  await waitForOk(service, `${url}/heartbeat`, START_TIMEOUT_MS);
  await waitForWorkers(service, Number(workers));
  return { url, service };
}

function side(rounds: SaturationRun[], cpu: CpuRun[]): WorkersSide {
  const rps = rounds.map((r) => r.requestsPerSecond);
  return {
    requestsPerSecond: mean(rps),
    minRequestsPerSecond: Math.min(...rps),
    maxRequestsPerSecond: Math.max(...rps),
    p99Ms: mean(rounds.map((r) => r.p99Ms)),
    errors: rounds.reduce((n, r) => n + r.errors, 0),
    non2xx: rounds.reduce((n, r) => n + r.non2xx, 0),
    cpu: summarizeCpu(cpu),
    rounds,
  };
}

/**
 * Both gateways started, then `rounds` rounds of a saturation run of each, which one goes first
 * alternating, each after its own warm-up; the CPU of each measured run is read before and after
 * it. Stops both before it returns.
 */
export async function measureWorkers(
  group: ProcessGroup,
  upstreamUrl: string,
  options: { rounds: number; seconds: number; warmup: number; connections: number },
  say: (line: string) => void,
): Promise<WorkersFigures> {
  const gateways = {
    '1': await startGateway(group, upstreamUrl, '1'),
    '2': await startGateway(group, upstreamUrl, '2'),
  };
  const runs: Record<WorkerCount, SaturationRun[]> = { '1': [], '2': [] };
  const cpu: Record<WorkerCount, CpuRun[]> = { '1': [], '2': [] };
  for (let round = 1; round <= options.rounds; round++) {
    const order = round % 2 === 1 ? WORKER_COUNTS : ([...WORKER_COUNTS].reverse() as WorkerCount[]);
    for (const workers of order) {
      const { url, service } = gateways[workers];
      const pid = service.child.pid as number;
      await sleep(SETTLE_MS);
      await runSaturation(`${url}${PATH}`, HEADERS, options.connections, options.warmup);
      const before = readTreeCpu(pid);
      const run = await runSaturation(
        `${url}${PATH}`,
        HEADERS,
        options.connections,
        options.seconds,
      );
      cpu[workers].push({ ...cpuUsedSince(before, pid), requests: run.requests });
      runs[workers].push(run);
      say(
        `  round ${round}/${options.rounds} GATEWAY_WORKERS=${workers} ${Math.round(run.requestsPerSecond)} req/s, p99 ${run.p99Ms} ms, ${run.errors} errors, ${run.non2xx} non-2xx`,
      );
    }
  }
  await Promise.all(Object.values(gateways).map((g) => group.stopOne(g.service)));
  const one = side(runs['1'], cpu['1']);
  const two = side(runs['2'], cpu['2']);
  return {
    rounds: options.rounds,
    durationSeconds: options.seconds,
    connections: options.connections,
    cores: availableParallelism(),
    runs: { '1': one, '2': two },
    '2/1': two.requestsPerSecond / one.requestsPerSecond,
    'cpu 2/1': two.cpu.microsPerRequest / one.cpu.microsPerRequest,
  };
}
