// `npm run bench:profile`: where the gateway's CPU goes per request, next to the bare Node proxy
// under the same load. Each runs alone under `node --cpu-prof` at a fixed request rate (below
// saturation, so the figures do not depend on how the two cores are shared); every sample is
// charged to the innermost frame outside Node's own code, so a `setHeader` called by the gateway
// counts as the gateway's and an `http.request` made by httpxy as httpxy's. The profiles are kept
// in bench-results/profiles/ for Chrome DevTools or speedscope. With `-- --http2`, the gateway
// over TLS instead, once over HTTP/2 and once over HTTP/1.1, each loaded by h2load at the same
// rate: what its HTTP/2 path costs against its HTTP/1.1 one, for the gap to nginx that
// `npm run bench` measures (nginx itself has no such profile). With `-- --tracing`, also the
// gateway tracing every request (100% sampled, OTLP to a receiver that discards it), with the
// CPU charged to the @opentelemetry packages added up.
import { once } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { makeCertificates } from './certificates.ts';
import { processCpuMicros } from './cpu.ts';
import { runH2load } from './h2load.ts';
import { shapeOf, startGatewayOverTls, TLS_PROTOCOLS, type TlsProtocol } from './over-tls.ts';
import { ProcessGroup, type ServiceProcess, waitForOk } from './processes.ts';
import { startOtlpSink, tracingEnvironment } from './tracing.ts';
import {
  gatewayEnvironment,
  HEADERS,
  PATH,
  ROOT,
  START_TIMEOUT_MS,
  spawnGateway,
  startBaseline,
  startUpstream,
} from './targets.ts';

interface CallFrame {
  functionName: string;
  url: string;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  /** Microseconds on the monotonic clock that `process.hrtime` reads, in every process. */
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

const MAIN_TOTAL = 'main thread (the profile), total';
const ALL_TOTAL = 'all threads (/proc/<pid>/stat), total';
/**
 * Untimed load first, so the profile is of code V8 has finished optimising: after 2 s at
 * 2,000 req/s the gateway's measured 10 s still carried its compilation (82.6 µs a request on
 * the main thread against 62.6–68.8 after 12 s; the bare proxy 56.4 against 50.9–54.4).
 */
const WARMUP_SECONDS = 12;
/** Connections of the HTTP/1.1 load; the HTTP/2 one keeps as many requests in flight. */
const CONNECTIONS = 50;

/** Who a frame's code belongs to: a package, the gateway's bundle, the baseline, or Node. */
function ownerOf(frame: CallFrame): string | undefined {
  const { url } = frame;
  if (url === '' || url.startsWith('node:')) return undefined;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
  if (pkg) return pkg === 'sonic-boom' ? 'pino' : pkg;
  if (url.includes('/dist/apps/api-gateway/')) return 'gateway code';
  return 'proxy code';
}

/** Now on the clock of the profiles' timestamps, in microseconds. */
function monotonicMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * Microseconds of CPU per owner, counting only the samples taken between `fromMicros` and
 * `toMicros` (while the load ran: start-up and shutdown are left out), and no idle time.
 */
function chargeSamples(
  profile: CpuProfile,
  fromMicros: number,
  toMicros: number,
): Map<string, number> {
  const parent = new Map<number, ProfileNode>();
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node);
  }
  const ownerOfNode = new Map<number, string>();
  const resolveOwner = (leaf: ProfileNode): string => {
    const known = ownerOfNode.get(leaf.id);
    if (known) return known;
    const name = leaf.callFrame.functionName;
    let owner: string | undefined;
    if (name === '(garbage collector)') owner = 'garbage collector';
    else if (name === '(program)') owner = 'V8 and native, outside any JS frame';
    for (let node: ProfileNode | undefined = leaf; node && !owner; node = parent.get(node.id)) {
      owner = ownerOf(node.callFrame);
    }
    owner ??= 'Node.js http, net and streams (no package on the stack)';
    ownerOfNode.set(leaf.id, owner);
    return owner;
  };
  const totals = new Map<string, number>();
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (at < fromMicros || at > toMicros) return;
    const node = byId.get(id) as ProfileNode;
    if (node.callFrame.functionName === '(idle)') return;
    const owner = resolveOwner(node);
    totals.set(owner, (totals.get(owner) ?? 0) + delta);
  });
  return totals;
}

/** Load for `seconds`, resolving with the requests it made; throws if any of them failed. */
type Load = (seconds: number) => Promise<number>;

async function loadAt(url: string, rate: number, seconds: number): Promise<number> {
  const result = await autocannon({
    url,
    headers: HEADERS,
    connections: CONNECTIONS,
    overallRate: rate,
    duration: seconds,
  });
  if (result.errors > 0 || result.non2xx > 0) {
    throw new Error(`${url}: ${result.errors} errors and ${result.non2xx} non-2xx under load`);
  }
  return result.requests.total;
}

/** `load` at h2load's fixed rate over TLS, with `protocol` (ALPN) on one port of the gateway. */
function h2loadAt(url: string, protocol: TlsProtocol, rate: number, logFile: string): Load {
  return async (seconds) => {
    const run = await runH2load(
      url,
      HEADERS,
      {
        protocol,
        ...shapeOf(protocol, CONNECTIONS),
        seconds,
        warmupSeconds: 0,
        ratePerSecond: rate,
      },
      logFile,
    );
    if (run.failed > 0 || run.non2xx > 0) {
      throw new Error(`${url}: ${run.failed} failed and ${run.non2xx} non-2xx under load`);
    }
    return run.succeeded;
  };
}

/** Loads `service`, stops it so it writes its profile, and moves the profile out. */
async function profileOne(
  service: ServiceProcess,
  load: Load,
  seconds: number,
  profileDir: string,
  keepAs: string,
): Promise<{ requests: number; owners: Map<string, number>; processMicros: number }> {
  const pid = service.child.pid as number;
  await load(WARMUP_SECONDS);
  const from = monotonicMicros();
  const cpuBefore = processCpuMicros(pid);
  const requests = await load(seconds);
  const processMicros = processCpuMicros(pid) - cpuBefore;
  const to = monotonicMicros();
  const exited = once(service.child, 'exit');
  service.child.kill('SIGTERM');
  await exited;
  const [file] = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`${service.name} wrote no profile to ${profileDir}`);
  renameSync(resolve(profileDir, file), keepAs);
  rmSync(profileDir, { recursive: true });
  const owners = chargeSamples(JSON.parse(readFileSync(keepAs, 'utf8')), from, to);
  return { requests, owners, processMicros };
}

interface Row {
  target: string;
  requests: number;
  owners: Map<string, number>;
  processMicros: number;
}

/** Owners costing less than this per request, in every row, share one line of the table. */
const MINOR_MICROS = 0.5;
const MINOR = `other packages (each under ${MINOR_MICROS} µs)`;

function table(rows: Row[]): string {
  const perRequest = (r: Row, name: string) => (r.owners.get(name) ?? 0) / r.requests;
  const minor = (name: string) => rows.every((r) => perRequest(r, name) < MINOR_MICROS);
  const owners = [...new Set(rows.flatMap((r) => [...r.owners.keys()]))];
  const order = owners
    .filter((n) => !minor(n))
    .sort((a, b) => perRequest(rows[0], b) - perRequest(rows[0], a));
  const minors = owners.filter(minor);
  const width = Math.max(...order.map((n) => n.length), ALL_TOTAL.length, MINOR.length);
  const column = Math.max(12, ...rows.map((r) => r.target.length + 2));
  const head = `${'µs of CPU per request'.padEnd(width)}${rows.map((r) => r.target.padStart(column)).join('')}`;
  const line = (name: string, cell: (r: Row) => number) =>
    `${name.padEnd(width)}${rows.map((r) => cell(r).toFixed(1).padStart(column)).join('')}`;
  return [
    head,
    ...order.map((name) => line(name, (r) => perRequest(r, name))),
    ...(minors.length > 0
      ? [line(MINOR, (r) => minors.reduce((sum, name) => sum + perRequest(r, name), 0))]
      : []),
    line(MAIN_TOTAL, (r) => owners.reduce((sum, name) => sum + perRequest(r, name), 0)),
    line(ALL_TOTAL, (r) => r.processMicros / r.requests),
  ].join('\n');
}

/** The gateway with `env` under autocannon, profiled as `name`. */
async function profileGateway(
  group: ProcessGroup,
  env: Record<string, string>,
  rate: number,
  seconds: number,
  outDir: string,
  name: string,
): Promise<Row> {
  const rawDir = resolve(outDir, `${name}-raw`);
  const gateway = spawnGateway(group, env, ['--cpu-prof', `--cpu-prof-dir=${rawDir}`]);
  const gatewayUrl = `http://127.0.0.1:${env['SERVICE_PORT']}`;
  await waitForOk(gateway, `${gatewayUrl}/heartbeat`, START_TIMEOUT_MS);
  await sleep(1000);
  const run = await profileOne(
    gateway,
    (s) => loadAt(`${gatewayUrl}${PATH}`, rate, s),
    seconds,
    rawDir,
    resolve(outDir, `${name}.cpuprofile`),
  );
  return { target: name, ...run };
}

/**
 * The gateway and the bare Node proxy in cleartext, one after the other, under autocannon;
 * with `tracing`, also the gateway tracing every request to a discarding OTLP receiver.
 */
async function profileCleartext(
  group: ProcessGroup,
  upstreamUrl: string,
  rate: number,
  seconds: number,
  outDir: string,
  tracing: boolean,
): Promise<Row[]> {
  const rows = [
    await profileGateway(
      group,
      await gatewayEnvironment(upstreamUrl),
      rate,
      seconds,
      outDir,
      'gateway',
    ),
  ];
  if (tracing) {
    const env = {
      ...(await gatewayEnvironment(upstreamUrl)),
      ...tracingEnvironment(await startOtlpSink(group)),
    };
    rows.push(await profileGateway(group, env, rate, seconds, outDir, 'gateway traced'));
  }
  const bareDir = resolve(outDir, 'bare-raw');
  const bare = await startBaseline(group, 'bare node proxy', 'bare-node-proxy.ts', upstreamUrl, [
    '--cpu-prof',
    `--cpu-prof-dir=${bareDir}`,
  ]);
  await sleep(1000);
  const bareRun = await profileOne(
    bare.service,
    (s) => loadAt(`${bare.url}${PATH}`, rate, s),
    seconds,
    bareDir,
    resolve(outDir, 'bare-node.cpuprofile'),
  );
  return [...rows, { target: 'bare-node', ...bareRun }];
}

/** The gateway over TLS, a fresh process for each protocol, under h2load. */
async function profileOverTls(
  group: ProcessGroup,
  upstreamUrl: string,
  rate: number,
  seconds: number,
  outDir: string,
): Promise<Row[]> {
  const dir = group.makeDir('tls');
  const certificates = makeCertificates(dir);
  const rows: Row[] = [];
  for (const protocol of TLS_PROTOCOLS) {
    const name = protocol === 'h2' ? 'h2' : 'http1';
    const rawDir = resolve(outDir, `gateway-${name}-raw`);
    const gateway = await startGatewayOverTls(group, upstreamUrl, certificates, [
      '--cpu-prof',
      `--cpu-prof-dir=${rawDir}`,
    ]);
    await sleep(1000);
    const run = await profileOne(
      gateway.service,
      h2loadAt(`${gateway.url}${PATH}`, protocol, rate, join(dir, `h2load-${name}.log`)),
      seconds,
      rawDir,
      resolve(outDir, `gateway-${name}.cpuprofile`),
    );
    rows.push({ target: `gateway ${protocol}`, ...run });
  }
  return rows;
}

/** With a traced gateway: what every @opentelemetry package costs it per request, together. */
function openTelemetryLine(rows: Row[]): string {
  const traced = rows.find((r) => r.target === 'gateway traced');
  if (!traced) return '';
  let micros = 0;
  for (const [owner, value] of traced.owners) {
    if (owner.startsWith('@opentelemetry/')) micros += value;
  }
  return `\n@opentelemetry/* packages in the traced gateway: ${(micros / traced.requests).toFixed(1)} µs of CPU per request\n`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '2000' },
      duration: { type: 'string', default: '10' },
      http2: { type: 'boolean', default: false },
      tracing: { type: 'boolean', default: false },
    },
  });
  const rate = Number(values.rate);
  const seconds = Number(values.duration);
  if (!(rate > 0 && seconds > 0)) throw new Error('--rate and --duration must be positive');
  const stamp = new Date()
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/:/g, '-');
  const outDir = resolve(ROOT, 'bench-results/profiles', stamp);
  mkdirSync(outDir, { recursive: true });
  const group = new ProcessGroup();
  try {
    const upstreamUrl = await startUpstream(group);
    const rows = values.http2
      ? await profileOverTls(group, upstreamUrl, rate, seconds, outDir)
      : await profileCleartext(group, upstreamUrl, rate, seconds, outDir, values.tracing === true);
    const h2 = shapeOf('h2', CONNECTIONS);
    const how = values.http2
      ? `, over TLS by h2load (HTTP/2: -c ${h2.connections} -m ${h2.streams}; HTTP/1.1: --h1 -c ${CONNECTIONS})`
      : '';
    process.stdout.write(
      `CPU profiles at ${rate} req/s for ${seconds} s (after ${WARMUP_SECONDS} s of warm-up, which is not counted), GET ${PATH}${how}\n\n${table(rows)}\n${openTelemetryLine(rows)}\nProfiles: ${outDir}\n`,
    );
  } finally {
    await group.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:profile: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
