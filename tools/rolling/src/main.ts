// A rolling restart behind a load balancer loses no request: two built gateways share Redis
// behind nginx, steady load runs through nginx, and each gateway in turn gets SIGTERM and is
// started again. Then a small shared rate limit, reached through nginx from one client, must hold
// within the README's drift bound (limit + N − 1). Run with `npm run test:rolling`, which builds
// the gateway and the demo services first; needs `redis-server` and `nginx` (Debian packages).
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
// The tools are scripts run by Node's type stripping, not Nx libraries: they share this one
// file, which reads the image's node flags, by path.
// eslint-disable-next-line @nx/enforce-module-boundaries
import { gatewayNodeFlags } from '../../scripts/production-command.mts';
import { nginxConfig } from './nginx.ts';
import {
  type Child,
  get,
  ProcessGroup,
  reserveFreePort,
  terminate,
  waitForOk,
  waitForOutput,
} from './processes.ts';

const ROOT = resolve(import.meta.dirname, '../../..');
const GATEWAY = resolve(ROOT, 'dist/apps/api-gateway/main.js');
const DEMO_SERVICES = resolve(ROOT, 'dist/apps/demo-services/main.js');
/** A ceiling only: the load stops once both gateways have been restarted. */
// Long enough for both restarts (about 10 s) with room to spare. The load runs its whole course:
// stopping autocannon early would abort the requests in flight and count them as errors.
const LOAD_SECONDS = 25;
const CONNECTIONS = 16;
/** Before the first SIGTERM, and between a gateway being back and the next SIGTERM. */
const PAUSE_MS = 3000;
const SHUTDOWN_DELAY_MS = 2000;
const START_TIMEOUT_MS = 15_000;
const SHARED_LIMIT = 20;
const INSTANCES = 2;
/** A source address of its own: on Linux all of 127.0.0.0/8 is loopback. */
const LIMITED_CLIENT = '127.0.0.2';

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function which(command: string): string {
  for (const dir of [...(process.env['PATH'] ?? '').split(':'), '/usr/sbin', '/usr/bin']) {
    const path = join(dir, command);
    if (dir && existsSync(path)) return path;
  }
  throw new Error(`${command} not found: apt-get install redis-server nginx`);
}

/**
 * The status of `/health` once it reports the drain, or the last one seen if it never does
 * within half of SHUTDOWN_DELAY_MS (while the gateway still accepts connections).
 */
async function waitForDraining(url: string): Promise<number | undefined> {
  const deadline = performance.now() + SHUTDOWN_DELAY_MS / 2;
  let status: number | undefined;
  while (performance.now() < deadline) {
    status = (await get(url))?.status;
    if (status === 503) break;
    await sleep(10);
  }
  return status;
}

interface Gateway {
  readonly label: string;
  readonly port: number;
  child: Child;
}

interface Restart {
  label: string;
  drainingStatus: number | undefined;
  exitCode: number | null;
  stopMs: number;
  readyMs: number;
}

async function main(): Promise<void> {
  for (const file of [GATEWAY, DEMO_SERVICES]) {
    if (!existsSync(file))
      throw new Error(`${file} is missing: build first (npx nx run-many -t build)`);
  }
  const redisServer = which('redis-server');
  const nginx = which('nginx');
  const dir = mkdtempSync(join(tmpdir(), 'helix-rolling-'));
  // nginx's workers run as nobody when the master is root; they need to reach the temp paths.
  chmodSync(dir, 0o755);
  const group = new ProcessGroup();
  try {
    await run(group, dir, redisServer, nginx);
  } finally {
    await group.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function run(group: ProcessGroup, dir: string, redisServer: string, nginx: string) {
  const redisPort = await reserveFreePort();
  const redis = group.spawn('redis-server', redisServer, [
    '--port',
    String(redisPort),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
  ]);
  const upstream = group.spawn('demo auth upstream', process.execPath, [DEMO_SERVICES], {
    DEMO_SERVICES: 'auth=0',
  });
  await waitForOutput(redis, /Ready to accept connections/, START_TIMEOUT_MS);
  const [, upstreamUrl] = await waitForOutput(
    upstream,
    /listening on (http:\/\/127\.0\.0\.1:\d+)/,
    START_TIMEOUT_MS,
  );

  const routesFile = join(dir, 'routes.yaml');
  writeFileSync(
    routesFile,
    [
      'routes:',
      '  - prefix: /api/auth',
      '    service: auth',
      '  - prefix: /api/limited',
      '    service: limited',
      `    targets: [${upstreamUrl}]`,
      `    rateLimit: { max: ${SHARED_LIMIT}, windowMs: 60000 }`,
      '',
    ].join('\n'),
  );
  const environment = {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    METRICS_PORT: '0',
    ACCESS_LOG: 'false',
    AUTH_SERVICE_URL: upstreamUrl,
    GATEWAY_ROUTES_FILE: routesFile,
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    // High enough that the load never trips it, finite so that every hit still goes to Redis.
    RATE_LIMIT_MAX: '10000000',
    RATE_LIMIT_WINDOW_MS: '60000',
    // nginx is the one proxy in front: the client is the right-most X-Forwarded-For entry.
    TRUST_PROXY: '1',
    SHUTDOWN_DELAY_MS: String(SHUTDOWN_DELAY_MS),
    SHUTDOWN_TIMEOUT_MS: '10000',
  };
  const nodeFlags = gatewayNodeFlags(ROOT);
  // Every gateway process started, restarted ones included, for the report of a failure.
  const instances: Child[] = [];
  const startGateway = async (label: string, port: number): Promise<Child> => {
    const child = group.spawn(`gateway ${label}`, process.execPath, [...nodeFlags, GATEWAY], {
      ...environment,
      SERVICE_PORT: String(port),
    });
    instances.push(child);
    await waitForOk(child, `http://127.0.0.1:${port}/heartbeat`, START_TIMEOUT_MS);
    return child;
  };
  const gateways: Gateway[] = [];
  for (const label of ['a', 'b']) {
    const port = await reserveFreePort();
    gateways.push({ label, port, child: await startGateway(label, port) });
  }

  const nginxPort = await reserveFreePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    nginxConfig(
      dir,
      nginxPort,
      gateways.map((g) => g.port),
    ),
  );
  execFileSync(nginx, ['-t', '-q', '-c', conf, '-p', dir, '-e', join(dir, 'error.log')]);
  const balancer = group.spawn('nginx', nginx, [
    '-c',
    conf,
    '-p',
    dir,
    '-e',
    join(dir, 'error.log'),
    '-g',
    'daemon off;',
  ]);
  const entry = `http://127.0.0.1:${nginxPort}`;
  await waitForOk(balancer, `${entry}/heartbeat`, START_TIMEOUT_MS);
  say(
    `rolling: nginx :${nginxPort} → gateways :${gateways.map((g) => g.port).join(', :')}, ` +
      `Redis :${redisPort}; load with ${CONNECTIONS} connections during the restarts`,
  );

  const loadStarted = performance.now();
  const load = new Promise<autocannon.Result>((resolve, reject) => {
    autocannon(
      { url: `${entry}/api/auth/rolling`, connections: CONNECTIONS, duration: LOAD_SECONDS },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
  });
  const restarts: Restart[] = [];
  await sleep(PAUSE_MS);
  for (const gateway of gateways) {
    const started = performance.now();
    const exited = terminate(gateway.child.process);
    // Straight to the gateway, not through nginx: readiness turns 503 at the signal.
    const health = await waitForDraining(`http://127.0.0.1:${gateway.port}/health`);
    const exitCode = await exited;
    const stopMs = performance.now() - started;
    gateway.child = await startGateway(gateway.label, gateway.port);
    restarts.push({
      label: gateway.label,
      drainingStatus: health,
      exitCode,
      stopMs: Math.round(stopMs),
      readyMs: Math.round(performance.now() - started - stopMs),
    });
    await sleep(PAUSE_MS);
  }
  const restartsDoneMs = performance.now() - loadStarted;
  if (restartsDoneMs > LOAD_SECONDS * 1000) {
    throw new Error(`the restarts took ${Math.round(restartsDoneMs)} ms, longer than the load`);
  }
  const result = await load;

  const statuses: number[] = [];
  for (let i = 0; i < 2 * SHARED_LIMIT; i++) {
    statuses.push((await get(`${entry}/api/limited/drift`, LIMITED_CLIENT))?.status ?? 0);
  }
  const admitted = statuses.filter((s) => s === 200).length;
  const unexpected = statuses.filter((s) => s !== 200 && s !== 429);

  for (const r of restarts) {
    say(
      `rolling: gateway ${r.label}: /health ${r.drainingStatus} after SIGTERM, exit ${r.exitCode} ` +
        `after ${r.stopMs} ms, answering again ${r.readyMs} ms later`,
    );
  }
  say(
    `rolling: ${result.requests.total} requests through nginx, ${result['2xx']} 2xx, ` +
      `${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts ` +
      `in ${result.duration.toFixed(1)} s (${Math.round(result.requests.average)} req/s)`,
  );
  say(
    `rolling: shared limit ${SHARED_LIMIT} over ${INSTANCES} gateways through nginx from one ` +
      `client: ${admitted} of ${statuses.length} admitted (bound ${SHARED_LIMIT + INSTANCES - 1})`,
  );

  const problems = [
    ...restarts.flatMap((r) => [
      ...(r.drainingStatus === 503
        ? []
        : [`gateway ${r.label} /health was ${r.drainingStatus} while draining, not 503`]),
      ...(r.exitCode === 0 ? [] : [`gateway ${r.label} exited with ${r.exitCode}, not 0`]),
    ]),
    ...(result.requests.total > 0 ? [] : ['the load sent no request']),
    ...(result.errors === 0 && result.timeouts === 0 ? [] : ['requests failed']),
    ...(result.non2xx === 0 ? [] : ['responses other than 2xx']),
    ...(unexpected.length === 0 ? [] : [`limited route answered ${unexpected.join(', ')}`]),
    ...(admitted >= SHARED_LIMIT && admitted <= SHARED_LIMIT + INSTANCES - 1
      ? []
      : [`${admitted} admitted, outside ${SHARED_LIMIT}…${SHARED_LIMIT + INSTANCES - 1}`]),
  ];
  if (problems.length > 0) {
    for (const child of instances) say(`--- ${child.name}\n${child.output()}`);
    say(`--- nginx error log\n${readFileSync(join(dir, 'error.log'), 'utf8')}`);
    throw new Error(`rolling restart check failed: ${problems.join('; ')}`);
  }
  say('rolling: no request lost across the restarts; the shared limit held');
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
