import type { CpuSummary } from './cpu.ts';
import type { BenchOptions } from './options.ts';
import {
  TLS_PROTOCOLS,
  TLS_TARGETS,
  type TlsFigures,
  type TlsProtocol,
  type TlsTargetName,
} from './over-tls.ts';
import type { OverloadFigures, OverloadPhase } from './overload.ts';
import type { SaturationRun } from './saturation.ts';
import type { TracingFigures } from './tracing.ts';
import { WORKER_COUNTS, type WorkersFigures } from './workers.ts';

// gateway-dns right after gateway: the pair compared runs back to back in every round. nginx and
// HAProxy last: the C anchors, what a proxy costs when it is not written in JavaScript.
export const TARGETS = [
  'direct',
  'gateway',
  'gateway-dns',
  'bare-node',
  'fastify',
  'nginx',
  'haproxy',
] as const;
export type TargetName = (typeof TARGETS)[number];
/** The targets that are proxies: their memory is measured side by side. */
export const PROXIES = ['gateway', 'bare-node', 'fastify'] as const satisfies readonly TargetName[];
export type ProxyName = (typeof PROXIES)[number];
/** The targets whose processes' CPU is read around each fixed-rate run: every proxy. */
export const CPU_TARGETS = [
  'gateway',
  'gateway-dns',
  'bare-node',
  'fastify',
  'nginx',
  'haproxy',
] as const satisfies readonly TargetName[];
export type CpuTargetName = (typeof CPU_TARGETS)[number];

export function isCpuTarget(name: TargetName): name is CpuTargetName {
  return (CPU_TARGETS as readonly TargetName[]).includes(name);
}

/** Saturation figures of one target: means over the rounds, counts summed. */
export interface SaturationSummary {
  requestsPerSecond: number;
  minRequestsPerSecond: number;
  maxRequestsPerSecond: number;
  p50Ms: number;
  p97_5Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  rounds: SaturationRun[];
}

/** Fixed-rate figures of one target, in milliseconds at 10 µs resolution. */
export interface LatencySummary {
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  sent: number;
  ok: number;
  non2xx: number;
  errors: number;
  unfinished: number;
  /** p99 of how late the generator itself sent: latencies below it are within its noise. */
  sendLagP99Ms: number;
}

/** The gateway with `UPSTREAM_DISCOVERY=dns` beside the static one: what discovery costs. */
export interface DnsDiscoveryFigures {
  /** What differs from `gatewayEnv`: the services' URL and the discovery settings. */
  env: Record<string, string>;
  dnsmasq: string;
  saturation: { 'gateway-dns/gateway': number; p99AddedMs: number };
  fixedRate: { p50AddedMs: number; p99AddedMs: number };
}

export interface BenchResults {
  date: string;
  commit: string;
  node: string;
  cpus: string;
  options: BenchOptions;
  /** What each target is. */
  targets: Record<TargetName, string>;
  /** The versions of the C anchors. */
  anchors: { nginx: string; haproxy: string };
  url: { path: string; headers: Record<string, string> };
  gatewayEnv: Record<string, string>;
  saturation: Record<TargetName, SaturationSummary>;
  /** Ratios of mean req/s. */
  ratios: Record<string, number>;
  fixedRate: {
    ratePerSecond: number;
    /** Rounds alternating the targets, each after a warm-up; percentiles pool every round. */
    rounds: number;
    /** Seconds of each measured run, per target and round. */
    durationSeconds: number;
    targets: Record<TargetName, LatencySummary>;
    gatewayAddedMs: { p50: number; p99: number };
    /**
     * CPU of each proxy's processes (nginx: master and worker) read before and after each
     * measured run, per request answered in it; medians over the rounds.
     */
    cpu: {
      targets: Record<CpuTargetName, CpuSummary>;
      /** Ratios of the medians, from all threads' utime + stime and from the main threads. */
      'gateway/bare-node': number;
      'gateway/bare-node, main thread': number;
    };
  };
  gateway: { readyMs: number };
  dnsDiscovery: DnsDiscoveryFigures;
  /**
   * Each proxy's RSS: idle, its maximum while the saturation runs went on (all rounds, every
   * target), and around one streamed download through it alone.
   */
  memory: Record<
    ProxyName,
    { rssIdleBytes: number; rssMaxSaturationBytes: number; download: DownloadFigures }
  >;
  /** The gateway and nginx over TLS, each over HTTP/2 and over HTTP/1.1, loaded by h2load. */
  tls: TlsFigures;
  /** The gateway at half and twice its capacity, traffic controls on and off. */
  overload: OverloadFigures;
  /** The gateway with tracing off and on at 100% sampling, in turn. */
  tracing: TracingFigures;
  /** The gateway with GATEWAY_WORKERS=1 and =2 at saturation, in turn. */
  workers: WorkersFigures;
  /** The gateway at saturation with its status page closed and open. */
  statusPage: StatusPageFigures;
}

/** What an open status page costs the proxied path: the same saturation, page closed and open. */
export interface StatusPageFigures {
  rounds: number;
  durationSeconds: number;
  connections: number;
  closed: SaturationSummary;
  /** A client on /status/events all through the run, as an open page holds it. */
  open: SaturationSummary;
  'open/closed': number;
  p99AddedMs: number;
  /** Updates the open page received per second of the measured runs (the sampler's rate: 1). */
  updatesPerSecond: number;
  maxUpdateGapMs: number;
}

/** The status-page phase's lines of the report. */
export function formatStatusPage(p: StatusPageFigures): string {
  const rows = (['closed', 'open'] as const).map((label) => {
    const s = p[label];
    return [
      `page ${label}`,
      integer.format(s.requestsPerSecond),
      `${integer.format(s.minRequestsPerSecond)}–${integer.format(s.maxRequestsPerSecond)}`,
      twoDecimals.format(s.p50Ms),
      twoDecimals.format(s.p99Ms),
      String(s.errors),
      String(s.non2xx),
    ];
  });
  return [
    `Status page: autocannon -c ${p.connections} -d ${p.durationSeconds} on the gateway, ${p.rounds} round(s) of the page closed and open (a client on /status/events), alternating which goes first; means over rounds`,
    table([
      ['gateway', 'req/s', 'min–max req/s', 'p50 ms', 'p99 ms', 'errors', 'non-2xx'],
      ...rows,
    ]),
    `open/closed req/s ${twoDecimals.format(p['open/closed'])} · p99 ${signed(p.p99AddedMs, twoDecimals.format(Math.abs(p.p99AddedMs)))} ms (open − closed) · ${twoDecimals.format(p.updatesPerSecond)} updates/s under load, longest gap ${integer.format(p.maxUpdateGapMs)} ms`,
  ].join('\n');
}

/** The workers phase's lines of the report, with what they can show on this machine. */
export function formatWorkers(w: WorkersFigures): string {
  const rows = WORKER_COUNTS.map((workers) => {
    const s = w.runs[workers];
    return [
      `GATEWAY_WORKERS=${workers}`,
      integer.format(s.requestsPerSecond),
      `${integer.format(s.minRequestsPerSecond)}–${integer.format(s.maxRequestsPerSecond)}`,
      twoDecimals.format(s.p99Ms),
      String(s.errors),
      String(s.non2xx),
      `${oneDecimal.format(s.cpu.microsPerRequest)} ±${oneDecimal.format(s.cpu.tickErrorMicrosPerRequest)}`,
      String(s.cpu.processes),
    ];
  });
  return [
    `Workers: autocannon -c ${w.connections} -d ${w.durationSeconds} on the gateway with GATEWAY_WORKERS=1 and =2 (otherwise the gateway above), ${w.rounds} round(s), which goes first alternating; means over rounds, CPU medians`,
    table([
      [
        'gateway',
        'req/s',
        'min–max req/s',
        'p99 ms',
        'errors',
        'non-2xx',
        'CPU µs/req',
        'processes',
      ],
      ...rows,
    ]),
    `GATEWAY_WORKERS=2/1: req/s ${twoDecimals.format(w['2/1'])} · CPU per request ${twoDecimals.format(w['cpu 2/1'])} (utime + stime of every thread of the primary and its workers over the measured run ÷ the requests answered)`,
    `What this can show: on ${w.cores} core(s) shared by the load generator (this process), the demo upstream and the gateway, a second worker can only use the CPU the other two leave idle. The req/s ratio is what a second worker gains or loses here, where the three compete, not how the gateway scales on cores of its own (that needs the load from another machine); the CPU ratio compares what a request cost, the primary's share included, and also moves with how many requests each event loop handles a turn, fewer when two loops split the load.`,
  ].join('\n');
}

export interface DownloadFigures {
  bytes: number;
  seconds: number;
  rssBeforeBytes: number;
  rssMaxBytes: number;
  rssAfterBytes: number;
  rssDeltaBytes: number;
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat('en-US', {
  minimumFractionDigits: 1,
  maximumFractionDigits: 1,
});
const twoDecimals = new Intl.NumberFormat('en-US', {
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
});
const mib = (bytes: number): string => `${twoDecimals.format(bytes / 1024 ** 2)} MiB`;
const signed = (n: number, text: string): string => `${n >= 0 ? '+' : '−'}${text}`;

/** Columns padded to their widest cell: the first left-aligned, the others right-aligned. */
function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
        .join('  '),
    )
    .join('\n');
}

/** The human-readable report of one run. */
export function formatReport(r: BenchResults): string {
  const { options: o } = r;
  const saturation = table([
    ['target', 'req/s', 'min–max req/s', 'p50 ms', 'p97.5 ms', 'p99 ms', 'errors', 'non-2xx'],
    ...TARGETS.map((name) => {
      const s = r.saturation[name];
      return [
        name,
        integer.format(s.requestsPerSecond),
        `${integer.format(s.minRequestsPerSecond)}–${integer.format(s.maxRequestsPerSecond)}`,
        twoDecimals.format(s.p50Ms),
        twoDecimals.format(s.p97_5Ms),
        twoDecimals.format(s.p99Ms),
        String(s.errors),
        String(s.non2xx),
      ];
    }),
  ]);
  const ratios = Object.entries(r.ratios)
    .map(([name, value]) => `${name} ${twoDecimals.format(value)}`)
    .join(' · ');
  const fixed = table([
    [
      'target',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'max ms',
      'ok',
      'non-2xx',
      'errors',
      'unfinished',
      'send lag p99 ms',
      'CPU µs/req',
      'main thread µs/req',
    ],
    ...TARGETS.map((name) => {
      const l = r.fixedRate.targets[name];
      const c = isCpuTarget(name) ? r.fixedRate.cpu.targets[name] : undefined;
      return [
        name,
        twoDecimals.format(l.p50Ms),
        twoDecimals.format(l.p90Ms),
        twoDecimals.format(l.p99Ms),
        twoDecimals.format(l.maxMs),
        integer.format(l.ok),
        String(l.non2xx),
        String(l.errors),
        String(l.unfinished),
        twoDecimals.format(l.sendLagP99Ms),
        c
          ? `${oneDecimal.format(c.microsPerRequest)} ±${oneDecimal.format(c.tickErrorMicrosPerRequest)}`
          : '–',
        c ? oneDecimal.format(c.mainThreadMicrosPerRequest) : '–',
      ];
    }),
  ]);
  const cpu = r.fixedRate.cpu;
  const trees = CPU_TARGETS.filter((t) => cpu.targets[t].processes > 1)
    .map((t) => `${t} ${cpu.targets[t].processes}`)
    .join(', ');
  const { gatewayAddedMs: added } = r.fixedRate;
  const ms = (n: number): string => `${signed(n, twoDecimals.format(Math.abs(n)))} ms`;
  const dns = r.dnsDiscovery;
  const dnsSetting = Object.entries(dns.env)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const pair = (name: 'gateway' | 'gateway-dns', s: SaturationSummary, l: LatencySummary) => [
    name,
    integer.format(s.requestsPerSecond),
    twoDecimals.format(s.p50Ms),
    twoDecimals.format(s.p99Ms),
    twoDecimals.format(l.p50Ms),
    twoDecimals.format(l.p99Ms),
  ];
  const discovery = table([
    ['target', 'req/s', 'p50 ms', 'p99 ms', 'fixed-rate p50 ms', 'fixed-rate p99 ms'],
    ...(['gateway', 'gateway-dns'] as const).map((name) =>
      pair(name, r.saturation[name], r.fixedRate.targets[name]),
    ),
  ]);
  const m = r.memory;
  const row = (label: string, cell: (proxy: ProxyName) => string): string[] => [
    label,
    ...PROXIES.map(cell),
  ];
  const download = (p: ProxyName): DownloadFigures => m[p].download;
  const memory = table([
    row('', (p) => p),
    row('RSS idle, after start-up', (p) => mib(m[p].rssIdleBytes)),
    row('RSS max during the saturation runs', (p) => mib(m[p].rssMaxSaturationBytes)),
    row(
      `download of ${integer.format(m.gateway.download.bytes)} bytes`,
      (p) => `${twoDecimals.format(download(p).seconds)} s`,
    ),
    row('  RSS before', (p) => mib(download(p).rssBeforeBytes)),
    row('  RSS max during', (p) => mib(download(p).rssMaxBytes)),
    row('  RSS after', (p) => mib(download(p).rssAfterBytes)),
    row('  RSS delta, after − before', (p) => {
      const delta = download(p).rssDeltaBytes;
      return signed(delta, mib(Math.abs(delta)));
    }),
  ]);
  const protocolName: Record<TlsProtocol, string> = { h2: 'HTTP/2', 'http/1.1': 'HTTP/1.1' };
  const { h2: h2Shape, 'http/1.1': h1Shape } = r.tls.runs.gateway;
  const tls = table([
    [
      'target, protocol',
      'conns × streams',
      'req/s',
      'min–max req/s',
      'p50 ms',
      'p99 ms',
      'failed',
      'non-2xx',
    ],
    ...TLS_TARGETS.flatMap((name) =>
      TLS_PROTOCOLS.map((p) => {
        const t = r.tls.runs[name][p];
        return [
          `${name}, ${protocolName[p]}`,
          `${t.connections} × ${t.streams}`,
          integer.format(t.requestsPerSecond),
          `${integer.format(t.minRequestsPerSecond)}–${integer.format(t.maxRequestsPerSecond)}`,
          twoDecimals.format(t.p50Ms),
          twoDecimals.format(t.p99Ms),
          String(t.failed),
          String(t.non2xx),
        ];
      }),
    ),
  ]);
  // What each target agreed with h2load, over every run: the record cost differs by cipher.
  const suites = (name: TlsTargetName): string[] => [
    ...new Set(TLS_PROTOCOLS.flatMap((p) => r.tls.runs[name][p].rounds.map((run) => run.tls))),
  ];
  const negotiated = TLS_TARGETS.map((name) => `${name} ${suites(name).join(', ')}`).join(' · ');
  const tlsSummaries = TLS_TARGETS.flatMap((name) => TLS_PROTOCOLS.map((p) => r.tls.runs[name][p]));
  const tlsFailed = tlsSummaries.reduce((n, t) => n + t.failed, 0);
  const tlsNon2xx = tlsSummaries.reduce((n, t) => n + t.non2xx, 0);
  // A failed or refused request is cheaper than a proxied one: with any, req/s measures errors too.
  const tlsCheck =
    tlsFailed + tlsNon2xx === 0
      ? 'check: every run over TLS ended with 0 failed and only 2xx answers'
      : `check FAILED: ${tlsFailed} failed and ${tlsNon2xx} non-2xx over the TLS runs, so their req/s are not the proxies'`;
  const tlsRatios = Object.entries(r.tls.ratios)
    .map(([name, value]) => `${name} ${twoDecimals.format(value)}`)
    .join(' · ');
  const ov = r.overload;
  const phaseRow = (label: string, p: OverloadPhase): string[] => [
    label,
    integer.format(p.ratePerSecond),
    integer.format(p.admittedPerSecond),
    twoDecimals.format(p.p50Ms),
    twoDecimals.format(p.p99Ms),
    `${twoDecimals.format(p.shedShare * 100)}%`,
    String(p.errors + p.unfinished),
    mib(p.rssMaxBytes),
    twoDecimals.format(p.sendLagP99Ms),
  ];
  const overload = table([
    [
      'gateway',
      'offered/s',
      'admitted/s',
      'p50 ms',
      'p99 ms',
      'shed',
      'errors',
      'RSS max',
      'send lag p99 ms',
    ],
    phaseRow('controls on, ½×', ov.controlsOn.half),
    phaseRow('controls on, 2×', ov.controlsOn.double),
    phaseRow('controls off, ½×', ov.controlsOff.half),
    phaseRow('controls off, 2×', ov.controlsOff.double),
  ]);
  const controls = Object.entries(ov.controlsOn.env)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const within = ov.controlsOn.double.p99Ms / ov.controlsOn.half.p99Ms;
  const tr = r.tracing;
  const tracingRow = (label: string, t: TracingFigures['off']): string[] => [
    label,
    integer.format(t.requestsPerSecond),
    twoDecimals.format(t.p99Ms),
    String(t.errors + t.non2xx),
  ];
  const tracing = table([
    ['gateway', 'req/s', 'p99 ms', 'errors + non-2xx'],
    tracingRow('tracing off', tr.off),
    tracingRow('tracing on, 100%', tr.on),
  ]);
  return [
    `Helix API Gateway benchmark · ${r.date} · Node ${r.node} · ${r.cpus} · commit ${r.commit}`,
    `GET ${r.url.path} with ${Object.entries(r.url.headers)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ')}`,
    '',
    `Saturation: autocannon -c ${o.connections} -d ${o.duration}, ${o.rounds} round(s) of ${TARGETS.join(', ')}, ${o.warmup} s warm-up before each; means over rounds; anchors ${r.anchors.nginx} (one worker), ${r.anchors.haproxy} (nbthread 1)`,
    saturation,
    `req/s ratios: ${ratios}`,
    '',
    `Fixed rate: ${integer.format(r.fixedRate.ratePerSecond)} req/s open loop, ${r.fixedRate.rounds} round(s) of ${r.fixedRate.durationSeconds} s per target, ${o.warmup} s warm-up before each; latency from each request's scheduled start, pooled over rounds`,
    fixed,
    `gateway added latency (gateway − direct): p50 ${signed(added.p50, twoDecimals.format(Math.abs(added.p50)))} ms, p99 ${signed(added.p99, twoDecimals.format(Math.abs(added.p99)))} ms`,
    `CPU µs/req: the proxy's utime + stime over every thread (/proc/<pid>/stat, 10 ms ticks; ± the truncation to ticks) over the measured run ÷ the requests it answered, median over rounds; main thread µs/req: each process's main thread alone (/proc/<pid>/schedstat, ns). Summed over a process and its children${trees ? ` (processes: ${trees})` : ''}. The demo upstream's and the load generator's CPU are in neither.`,
    `CPU ratios: gateway/bare-node ${twoDecimals.format(cpu['gateway/bare-node'])} (all threads) · ${twoDecimals.format(cpu['gateway/bare-node, main thread'])} (main thread)`,
    '',
    `DNS discovery: gateway-dns is the gateway with ${dnsSetting}, resolved by ${dns.dnsmasq} on 127.0.0.1; from the saturation and fixed-rate runs above`,
    discovery,
    `gateway-dns/gateway req/s ${twoDecimals.format(dns.saturation['gateway-dns/gateway'])} · saturation p99 ${ms(dns.saturation.p99AddedMs)} · fixed-rate p50 ${ms(dns.fixedRate.p50AddedMs)}, p99 ${ms(dns.fixedRate.p99AddedMs)} (gateway-dns − gateway)`,
    '',
    `Gateway ready: spawn → first 200 from /heartbeat in ${integer.format(r.gateway.readyMs)} ms`,
    '',
    'Memory of each proxy process (RSS from /proc/<pid>/status)',
    memory,
    '',
    `Over TLS: h2load -D ${o.duration} --warm-up-time=${o.warmup}, HTTP/2 with -c ${h2Shape.connections} -m ${h2Shape.streams}, HTTP/1.1 with --h1 -c ${h1Shape.connections} -m 1, ${o.rounds} round(s) of ${TLS_TARGETS.join(', ')}; means over rounds, p50 and p99 from h2load's per-request log`,
    `${r.tls.h2load} · ${r.tls.nginx} · ${r.tls.certificate}`,
    tls,
    `negotiated: ${negotiated}`,
    tlsCheck,
    `req/s ratios over TLS: ${tlsRatios}`,
    `gateway over TLS: HTTP/2 req/s is ${twoDecimals.format(r.tls.ratios['gateway, h2 / http/1.1 over TLS'])}× its HTTP/1.1 req/s (goal ≥ 1); Node's own HTTP/2 server, in the bare proxy: ${twoDecimals.format(r.tls.ratios['bare-node, h2 / http/1.1 over TLS'])}×`,
    '',
    `Overload: an upstream of ${ov.upstreamWorkers} workers × ${ov.serviceTimeMs} ms, gateway capacity ${integer.format(ov.capacityPerSecond)} req/s (autocannon, controls off); open loop at ½× and 2× for ${ov.durationSeconds} s each; controls on: ${controls}`,
    overload,
    `controls on: admitted p99 at 2× is ${twoDecimals.format(within)}× the p99 at ½× (goal ≤ 3)`,
    '',
    `Tracing: autocannon -c ${o.connections} -d ${o.duration}, ${o.rounds} round(s) of off and on, ${o.warmup} s warm-up before each; on: ${Object.entries(
      tr.env,
    )
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
    tracing,
    `tracing on/off req/s ${twoDecimals.format(tr['on/off'])} (goal ≥ 0.9) · ${integer.format(tr.exports)} exports, ${mib(tr.exportedBytes)} received · ${integer.format(tr.spansDropped)} spans dropped`,
    '',
    formatWorkers(r.workers),
    '',
    formatStatusPage(r.statusPage),
  ].join('\n');
}
