// The gateway against the upstream it fronts, the same gateway with DNS discovery (names
// resolved by dnsmasq), two reference proxies on Node and two C anchors (nginx and HAProxy, one
// worker or thread each), at saturation and at a fixed rate, with the CPU each proxy spends per
// request at that rate; then over TLS (HTTP/2 and HTTP/1.1) beside nginx, an overload scenario,
// the gateway with tracing off and on, the gateway with GATEWAY_WORKERS=1 and =2, and the
// gateway at saturation with its status page closed and open. Prints a table, writes
// bench-results/<date>.json and bench-results/latency.svg. Run with
// `npm run bench`, which builds the gateway and the demo services first; see USAGE in options.ts
// for the flags. Needs the Debian packages nghttp2-client (h2load), nginx, haproxy, openssl and
// dnsmasq-base.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type CpuRun, type CpuSummary, cpuUsedSince, readTreeCpu, summarizeCpu } from './cpu.ts';
import { BENCH_HOST, dnsmasqVersion, startDnsmasq } from './dnsmasq.ts';
import { download } from './download.ts';
import { haproxyVersion, startHaproxy } from './haproxy.ts';
import { drawLatencyChart } from './latency-chart.ts';
import { startNginx } from './nginx.ts';
import { mergeOpenLoop, type OpenLoopResult, runOpenLoop } from './open-loop.ts';
import { type BenchOptions, OptionsError, readOptions, USAGE } from './options.ts';
import { findTlsTools, measureOverTls } from './over-tls.ts';
import { measureOverload } from './overload.ts';
import { failure, ProcessGroup, type ServiceProcess, waitForOk } from './processes.ts';
import {
  type BenchResults,
  CPU_TARGETS,
  type CpuTargetName,
  type DownloadFigures,
  formatReport,
  isCpuTarget,
  type LatencySummary,
  PROXIES,
  type ProxyName,
  formatStatusPage,
  type SaturationSummary,
  type StatusPageFigures,
  TARGETS,
  type TargetName,
} from './report.ts';
import { readRssBytes, sampleMaxRss } from './rss.ts';
import { runSaturation, type SaturationRun } from './saturation.ts';
import { measureTracing } from './tracing.ts';
import { mean, nsToMs, percentile, roundMs } from './stats.ts';
import { measureStatusPage } from './status-page.ts';
import { measureWorkers } from './workers.ts';
import {
  dnsGatewayEnvironment,
  gatewayEnvironment,
  HEADERS,
  PATH,
  ROOT,
  START_TIMEOUT_MS,
  spawnGateway,
  startBaseline,
  startUpstream,
} from './targets.ts';

const RESULTS_DIR = resolve(ROOT, 'bench-results');
const RSS_INTERVAL_MS = 50;
const SETTLE_MS = 1000;
const HEALTH_POLL_MS = 100;

const DESCRIPTIONS: Record<TargetName, string> = {
  direct: 'the demo auth upstream itself (dist/apps/demo-services, DEMO_SERVICES=auth=0)',
  gateway:
    "the built gateway (dist/apps/api-gateway) as the image starts it: the Dockerfile CMD's node flags, NODE_ENV=production, one worker",
  'gateway-dns': `the same gateway with UPSTREAM_DISCOVERY=dns, its services at http://${BENCH_HOST}:<upstream port>, which a dnsmasq on 127.0.0.1 resolves to 127.0.0.1`,
  'bare-node': 'node:http server + http.request with a keep-alive Agent (bare-node-proxy.ts)',
  fastify: '@fastify/http-proxy with its defaults (fastify-proxy.ts)',
  nginx:
    'nginx, one worker, proxy_pass to an upstream block with keepalive 64 (proxy_http_version 1.1, Connection ""), no access log (nginx.ts)',
  haproxy:
    'HAProxy, nbthread 1, one process (-db), keep-alive on both sides with http-reuse always, no log (haproxy.ts)',
};

function mapProxies<T>(figure: (proxy: ProxyName) => T): Record<ProxyName, T> {
  return Object.fromEntries(PROXIES.map((p) => [p, figure(p)])) as Record<ProxyName, T>;
}

/** What every saturating phase (TLS, tracing, workers, status page) takes of the options. */
function saturationPhase(options: BenchOptions): {
  rounds: number;
  seconds: number;
  warmup: number;
  connections: number;
} {
  return {
    rounds: options.rounds,
    seconds: options.duration,
    warmup: options.warmup,
    connections: options.connections,
  };
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** A benchmark of 404s or of the wrong upstream would measure nothing: check each target once. */
async function checkTarget(name: TargetName, url: string): Promise<void> {
  const res = await fetch(url, { headers: HEADERS });
  const body = (await res.json().catch(() => undefined)) as { service?: string } | undefined;
  if (res.status !== 200 || body?.service !== 'auth') {
    throw new Error(`${name}: GET ${url} answered ${res.status}, not the auth upstream's echo`);
  }
}

/**
 * The DNS-discovery gateway must have replaced the name by the address it resolves to (it logs
 * the change) and found that instance healthy, or it would be measuring the static fallback.
 */
async function checkDnsGateway(gateway: ServiceProcess, baseUrl: string): Promise<void> {
  const replaced = `auth: ${BENCH_HOST} now has 1 instance(s)`;
  const deadline = performance.now() + START_TIMEOUT_MS;
  for (;;) {
    const res = await fetch(`${baseUrl}/health`);
    const body = (await res.json()) as { instances?: Record<string, { health: string }[]> };
    const auth = body.instances?.['auth'] ?? [];
    if (gateway.output().includes(replaced) && auth.length === 1 && auth[0].health === 'up') return;
    if (performance.now() > deadline) {
      throw failure(
        gateway,
        `showed no discovered, healthy auth instance within ${START_TIMEOUT_MS} ms (/health: ${JSON.stringify(auth)})`,
      );
    }
    await sleep(HEALTH_POLL_MS);
  }
}

function summarizeSaturation(rounds: SaturationRun[]): SaturationSummary {
  const rps = rounds.map((r) => r.requestsPerSecond);
  return {
    requestsPerSecond: mean(rps),
    minRequestsPerSecond: Math.min(...rps),
    maxRequestsPerSecond: Math.max(...rps),
    p50Ms: mean(rounds.map((r) => r.p50Ms)),
    p97_5Ms: mean(rounds.map((r) => r.p97_5Ms)),
    p99Ms: mean(rounds.map((r) => r.p99Ms)),
    errors: rounds.reduce((n, r) => n + r.errors, 0),
    non2xx: rounds.reduce((n, r) => n + r.non2xx, 0),
    rounds,
  };
}

async function saturate(
  urls: Record<TargetName, string>,
  options: BenchOptions,
): Promise<Record<TargetName, SaturationSummary>> {
  const runs = Object.fromEntries(TARGETS.map((t) => [t, [] as SaturationRun[]]));
  for (let round = 1; round <= options.rounds; round++) {
    for (const target of TARGETS) {
      await runSaturation(urls[target], HEADERS, options.connections, options.warmup);
      const run = await runSaturation(urls[target], HEADERS, options.connections, options.duration);
      runs[target].push(run);
      say(
        `  round ${round}/${options.rounds} ${target.padEnd(11)} ${Math.round(run.requestsPerSecond)} req/s, p99 ${run.p99Ms} ms, ${run.errors} errors, ${run.non2xx} non-2xx`,
      );
    }
  }
  return Object.fromEntries(TARGETS.map((t) => [t, summarizeSaturation(runs[t])])) as Record<
    TargetName,
    SaturationSummary
  >;
}

function summarizeLatency(r: OpenLoopResult): LatencySummary {
  return {
    p50Ms: nsToMs(percentile(r.latenciesNs, 50)),
    p90Ms: nsToMs(percentile(r.latenciesNs, 90)),
    p99Ms: nsToMs(percentile(r.latenciesNs, 99)),
    maxMs: nsToMs(percentile(r.latenciesNs, 100)),
    sent: r.sent,
    ok: r.ok,
    non2xx: r.non2xx,
    errors: r.errors,
    unfinished: r.unfinished,
    sendLagP99Ms: nsToMs(percentile(r.sendLagNs, 99)),
  };
}

/**
 * The fixed-rate runs, alternating the targets like `saturate`; samples pooled over rounds. The
 * CPU of each proxy's process tree is read right before and right after its measured run.
 */
async function measureLatencies(
  urls: Record<TargetName, string>,
  pids: Record<CpuTargetName, number>,
  options: BenchOptions,
): Promise<{
  latency: Record<TargetName, LatencySummary>;
  cpu: Record<CpuTargetName, CpuRun[]>;
}> {
  const runs = Object.fromEntries(TARGETS.map((t) => [t, [] as OpenLoopResult[]]));
  const cpu = Object.fromEntries(CPU_TARGETS.map((t) => [t, [] as CpuRun[]])) as Record<
    CpuTargetName,
    CpuRun[]
  >;
  for (let round = 1; round <= options.rounds; round++) {
    for (const target of TARGETS) {
      // A pause first, so the work the previous load left behind (GC, closing sockets) is done.
      await sleep(SETTLE_MS);
      await runOpenLoop(urls[target], HEADERS, options.rate, options.warmup);
      const before = isCpuTarget(target) ? readTreeCpu(pids[target]) : undefined;
      const run = await runOpenLoop(urls[target], HEADERS, options.rate, options.latencyDuration);
      if (isCpuTarget(target) && before) {
        const used = cpuUsedSince(before, pids[target]);
        cpu[target].push({ ...used, requests: run.ok + run.non2xx });
      }
      runs[target].push(run);
      const p = (q: number) => nsToMs(percentile(run.latenciesNs, q));
      say(
        `  round ${round}/${options.rounds} ${target.padEnd(11)} p50 ${p(50)} ms, p99 ${p(99)} ms`,
      );
    }
  }
  return {
    latency: Object.fromEntries(
      TARGETS.map((t) => [t, summarizeLatency(mergeOpenLoop(runs[t]))]),
    ) as Record<TargetName, LatencySummary>,
    cpu,
  };
}

async function measureDownload(
  name: ProxyName,
  pid: number,
  baseUrl: string,
  bytes: number,
): Promise<DownloadFigures> {
  const rssBeforeBytes = readRssBytes(pid);
  const sampler = sampleMaxRss(pid, RSS_INTERVAL_MS);
  const got = await download(`${baseUrl}/api/auth/download?bytes=${bytes}`, HEADERS);
  const rssMaxBytes = sampler.stop();
  const rssAfterBytes = readRssBytes(pid);
  if (got.status !== 200 || got.bytes !== bytes) {
    throw new Error(
      `download through ${name}: status ${got.status}, ${got.bytes} of ${bytes} bytes`,
    );
  }
  return {
    bytes: got.bytes,
    seconds: got.seconds,
    rssBeforeBytes,
    rssMaxBytes,
    rssAfterBytes,
    rssDeltaBytes: rssAfterBytes - rssBeforeBytes,
  };
}

function describeMachine(): { commit: string; cpus: string } {
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT })
    .toString()
    .trim();
  const dirty =
    execFileSync('git', ['status', '--porcelain', '--', '.', ':!bench-results'], { cwd: ROOT })
      .length > 0;
  const list = cpus();
  return {
    commit: dirty ? `${commit}+changes` : commit,
    cpus: `${list.length} × ${list[0]?.model.trim()}`,
  };
}

async function statusPageFigures(
  group: ProcessGroup,
  upstreamUrl: string,
  options: BenchOptions,
): Promise<StatusPageFigures> {
  say(
    `Status page: the gateway at saturation, its page closed and open, ${options.rounds} round(s), ${options.duration} s per run`,
  );
  const rounds = await measureStatusPage(group, upstreamUrl, saturationPhase(options), say);
  const closed = summarizeSaturation(rounds.closed);
  const open = summarizeSaturation(rounds.open);
  return {
    rounds: options.rounds,
    durationSeconds: options.duration,
    connections: options.connections,
    closed,
    open,
    'open/closed': open.requestsPerSecond / closed.requestsPerSecond,
    p99AddedMs: roundMs(open.p99Ms - closed.p99Ms),
    updatesPerSecond: rounds.updates / (options.rounds * options.duration),
    maxUpdateGapMs: Math.round(rounds.maxUpdateGapMs),
  };
}

async function run(options: BenchOptions, group: ProcessGroup): Promise<BenchResults> {
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const tlsTools = findTlsTools();
  const anchors = { nginx: tlsTools.nginx, haproxy: haproxyVersion() };
  say('Starting the upstream, the gateway and the baselines on 127.0.0.1');
  const upstreamUrl = await startUpstream(group);
  const gatewayEnv = await gatewayEnvironment(upstreamUrl);
  const gatewayUrl = `http://127.0.0.1:${gatewayEnv['SERVICE_PORT']}`;
  // Alone, so the ready time is not slowed by the baselines starting beside it.
  const gateway = spawnGateway(group, gatewayEnv);
  const readyMs =
    (await waitForOk(gateway, `${gatewayUrl}/heartbeat`, START_TIMEOUT_MS)) - gateway.spawnedAt;
  const dns = await startDnsmasq(group, group.makeDir('dnsmasq'));
  const dnsGatewayEnv = await dnsGatewayEnvironment(upstreamUrl, BENCH_HOST, dns.server);
  const dnsGatewayUrl = `http://127.0.0.1:${dnsGatewayEnv['SERVICE_PORT']}`;
  const dnsGateway = spawnGateway(group, dnsGatewayEnv);
  const [bare, fastify, nginx, haproxy] = await Promise.all([
    startBaseline(group, 'bare node proxy', 'bare-node-proxy.ts', upstreamUrl),
    startBaseline(group, 'fastify proxy', 'fastify-proxy.ts', upstreamUrl),
    startNginx(group, group.makeDir('nginx'), upstreamUrl),
    startHaproxy(group, group.makeDir('haproxy'), upstreamUrl),
  ]);
  await waitForOk(dnsGateway, `${dnsGatewayUrl}/heartbeat`, START_TIMEOUT_MS);
  await checkDnsGateway(dnsGateway, dnsGatewayUrl);
  // Neither C proxy says when it listens: poll the proxied path until it answers.
  for (const anchor of [nginx, haproxy]) {
    await waitForOk(anchor.service, `${anchor.url}${PATH}`, START_TIMEOUT_MS);
  }
  const bases: Record<TargetName, string> = {
    direct: upstreamUrl,
    gateway: gatewayUrl,
    'gateway-dns': dnsGatewayUrl,
    'bare-node': bare.url,
    fastify: fastify.url,
    nginx: nginx.url,
    haproxy: haproxy.url,
  };
  const urls = Object.fromEntries(TARGETS.map((t) => [t, `${bases[t]}${PATH}`])) as Record<
    TargetName,
    string
  >;
  for (const target of TARGETS) await checkTarget(target, urls[target]);
  const pids: Record<ProxyName, number> = {
    gateway: gateway.child.pid as number,
    'bare-node': bare.service.child.pid as number,
    fastify: fastify.service.child.pid as number,
  };
  // nginx's master is the process spawned, its worker a child of it: the CPU readings sum both.
  const cpuPids: Record<CpuTargetName, number> = {
    ...pids,
    'gateway-dns': dnsGateway.child.pid as number,
    nginx: nginx.service.child.pid as number,
    haproxy: haproxy.service.child.pid as number,
  };
  await sleep(SETTLE_MS);
  const rssIdleBytes = mapProxies((p) => readRssBytes(pids[p]));

  say(`Saturation: ${options.rounds} round(s), ${options.duration} s per target`);
  const samplers = mapProxies((p) => sampleMaxRss(pids[p], RSS_INTERVAL_MS));
  const saturation = await saturate(urls, options);
  const rssMaxSaturationBytes = mapProxies((p) => samplers[p].stop());

  say(
    `Fixed rate: ${options.rate} req/s, ${options.rounds} round(s), ${options.latencyDuration} s per target`,
  );
  const { latency, cpu } = await measureLatencies(urls, cpuPids, options);

  say(`Download: ${options.downloadBytes} bytes through each proxy`);
  const downloads = {} as Record<ProxyName, DownloadFigures>;
  for (const proxy of PROXIES) {
    await sleep(SETTLE_MS);
    downloads[proxy] = await measureDownload(
      proxy,
      pids[proxy],
      bases[proxy],
      options.downloadBytes,
    );
  }

  // The baselines are done: the TLS runs and the overload scenario start gateways of their own and
  // have the cores to themselves.
  await Promise.all([
    group.stopOne(bare.service),
    group.stopOne(fastify.service),
    group.stopOne(nginx.service),
    group.stopOne(haproxy.service),
    group.stopOne(dnsGateway),
    group.stopOne(dns.service),
  ]);
  await group.stopOne(gateway);
  say(
    `TLS: the gateway, the bare Node proxy and nginx, h2load over HTTP/2 and HTTP/1.1, ${options.rounds} round(s), ${options.duration} s per run`,
  );
  const tls = await measureOverTls(group, upstreamUrl, saturationPhase(options), tlsTools, say);
  say('Overload: the gateway at half and twice its capacity, traffic controls on and off');
  const overload = await measureOverload(
    group,
    { seconds: options.duration, connections: 2 * options.connections, warmup: options.warmup },
    say,
  );
  say(
    `Tracing: the gateway with tracing off and on (100% sampled, OTLP to a discarding receiver), ${options.rounds} round(s), ${options.duration} s each`,
  );
  const tracing = await measureTracing(group, upstreamUrl, saturationPhase(options), say);
  say(
    `Workers: the gateway with GATEWAY_WORKERS=1 and =2 at saturation, ${options.rounds} round(s), ${options.duration} s each`,
  );
  const workers = await measureWorkers(group, upstreamUrl, saturationPhase(options), say);
  const statusPage = await statusPageFigures(group, upstreamUrl, options);

  const rps = (t: TargetName): number => saturation[t].requestsPerSecond;
  const cpuSummaries = Object.fromEntries(
    CPU_TARGETS.map((t) => [t, summarizeCpu(cpu[t])]),
  ) as Record<CpuTargetName, CpuSummary>;
  return {
    date,
    ...describeMachine(),
    node: process.version,
    options,
    targets: DESCRIPTIONS,
    anchors,
    url: { path: PATH, headers: HEADERS },
    gatewayEnv,
    saturation,
    ratios: {
      'gateway/direct': rps('gateway') / rps('direct'),
      'gateway/bare-node': rps('gateway') / rps('bare-node'),
      'gateway/fastify': rps('gateway') / rps('fastify'),
      'gateway/nginx': rps('gateway') / rps('nginx'),
      'gateway/haproxy': rps('gateway') / rps('haproxy'),
      'bare-node/direct': rps('bare-node') / rps('direct'),
      'fastify/direct': rps('fastify') / rps('direct'),
      'nginx/direct': rps('nginx') / rps('direct'),
      'haproxy/direct': rps('haproxy') / rps('direct'),
    },
    fixedRate: {
      ratePerSecond: options.rate,
      rounds: options.rounds,
      durationSeconds: options.latencyDuration,
      targets: latency,
      gatewayAddedMs: {
        p50: roundMs(latency.gateway.p50Ms - latency.direct.p50Ms),
        p99: roundMs(latency.gateway.p99Ms - latency.direct.p99Ms),
      },
      cpu: {
        targets: cpuSummaries,
        'gateway/bare-node':
          cpuSummaries.gateway.microsPerRequest / cpuSummaries['bare-node'].microsPerRequest,
        'gateway/bare-node, main thread':
          cpuSummaries.gateway.mainThreadMicrosPerRequest /
          cpuSummaries['bare-node'].mainThreadMicrosPerRequest,
      },
    },
    gateway: { readyMs },
    dnsDiscovery: {
      env: Object.fromEntries(
        ['AUTH_SERVICE_URL', 'UPSTREAM_DISCOVERY', 'DNS_SERVERS', 'DNS_REFRESH_MS'].map((k) => [
          k,
          dnsGatewayEnv[k],
        ]),
      ),
      dnsmasq: dnsmasqVersion(),
      saturation: {
        'gateway-dns/gateway': rps('gateway-dns') / rps('gateway'),
        p99AddedMs: roundMs(saturation['gateway-dns'].p99Ms - saturation.gateway.p99Ms),
      },
      fixedRate: {
        p50AddedMs: roundMs(latency['gateway-dns'].p50Ms - latency.gateway.p50Ms),
        p99AddedMs: roundMs(latency['gateway-dns'].p99Ms - latency.gateway.p99Ms),
      },
    },
    memory: mapProxies((p) => ({
      rssIdleBytes: rssIdleBytes[p],
      rssMaxSaturationBytes: rssMaxSaturationBytes[p],
      download: downloads[p],
    })),
    tls,
    overload,
    tracing,
    workers,
    statusPage,
  };
}

/** `--status-page-only`: the upstream, then that phase alone; its own results file. */
async function runStatusPageOnly(options: BenchOptions, group: ProcessGroup): Promise<void> {
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const upstreamUrl = await startUpstream(group);
  const statusPage = await statusPageFigures(group, upstreamUrl, options);
  const results = { date, ...describeMachine(), node: process.version, options, statusPage };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = resolve(RESULTS_DIR, `${date.replace(/:/g, '-')}-status-page.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  say(`\n${formatStatusPage(statusPage)}\n\nWrote ${file}`);
}

async function main(): Promise<void> {
  const options = readOptions(process.argv.slice(2), process.env);
  if (options === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const group = new ProcessGroup();
  if (options.statusPageOnly) {
    try {
      await runStatusPageOnly(options, group);
    } finally {
      await group.stop();
    }
    return;
  }
  let results: BenchResults;
  try {
    results = await run(options, group);
  } finally {
    await group.stop();
  }
  mkdirSync(RESULTS_DIR, { recursive: true });
  // Colons are not allowed in Windows file names.
  const file = resolve(RESULTS_DIR, `${results.date.replace(/:/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(resolve(RESULTS_DIR, 'latency.svg'), drawLatencyChart(results));
  say(`\n${formatReport(results)}\n\nWrote ${file} and ${resolve(RESULTS_DIR, 'latency.svg')}`);
}

main().catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`bench: ${message}\n${err instanceof OptionsError ? USAGE : ''}`);
  process.exitCode = 1;
});
