/**
 * Soak test: the built gateway in front of the built demo services, at about half of its
 * measured capacity for N minutes, with faults injected on a schedule. Prints the RSS, open FD
 * and socket series and a verdict; exits 0 on pass, 1 on fail. Run by Node 24's type stripping:
 * `npm run soak` (10 minutes), `npm run soak -- --quick` (1 minute), `--minutes N`.
 *
 * Every request carries a unique X-Request-Id; the echo upstream returns it in its body and the
 * gateway on its response, so a response that reaches the wrong client is caught.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { Agent, type IncomingHttpHeaders, request } from 'node:http';
import { connect } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
// The tools are scripts run by Node's type stripping, not Nx libraries: they share this one
// file, which reads the image's node flags, by path.
// eslint-disable-next-line @nx/enforce-module-boundaries
import { gatewayNodeFlags } from '../../scripts/production-command.mts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const GATEWAY_MAIN = resolve(ROOT, 'dist/apps/api-gateway/main.js');
const DEMO_MAIN = resolve(ROOT, 'dist/apps/demo-services/main.js');

const HEADERS_TIMEOUT_MS = 2000;
const HEALTH_CHECK_INTERVAL_MS = 2000;
const SAMPLE_EVERY_MS = 1000;
const PRINT_EVERY_SAMPLES = 5;
const CAPACITY_MS = 5000;
const CAPACITY_CONCURRENCY = 64;
const MAX_IN_FLIGHT = 2000;
/** Kira answers 502/503 from its death until the health checker has seen it back, plus slack. */
const DEAD_GRACE_MS = HEALTH_CHECK_INTERVAL_MS * 2 + 1000;
const RSS_LIMIT_MB_PER_10_MIN = 5;

// ---------------------------------------------------------------- options

function readOptions(argv: string[]): { minutes: number } {
  let minutes = 10;
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === '--quick') minutes = 1;
    else if (argv[i] === '--minutes') minutes = Number(argv[++i]);
    else throw new Error(`unknown option ${argv[i]} (use --minutes N or --quick)`);
  }
  if (!Number.isFinite(minutes) || minutes <= 0) throw new Error('--minutes must be positive');
  return { minutes };
}

function print(line = ''): void {
  process.stdout.write(`${line}\n`);
}

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

// ---------------------------------------------------------------- processes

/** Children being stopped on purpose, whose exit is not news. */
const stopping = new WeakSet<ChildProcess>();

interface Started {
  child: ChildProcess;
  output: () => string;
}

function startProcess(
  main: string,
  env: Record<string, string>,
  ready: RegExp,
  count = 1,
  nodeFlags: readonly string[] = [],
): Promise<Started & { matches: RegExpExecArray[] }> {
  if (!existsSync(main)) throw new Error(`${main} is missing: build it first (npm run soak does)`);
  const child = spawn(process.execPath, [...nodeFlags, main], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Any exit is worth a line: a child that dies mid-run explains the errors that follow.
  child.on('exit', (code, signal) => {
    if (!stopping.has(child))
      print(`  ${main} (pid ${child.pid}) exited: code ${code}, signal ${signal}`);
  });
  let text = '';
  // Only the tail is kept: a long run logs a warning for every injected upstream fault.
  const append = (chunk: Buffer) => (text = (text + chunk.toString()).slice(-65_536));
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`${main} did not start:\n${text}`)), 15_000);
    const check = () => {
      const matches = [...text.matchAll(new RegExp(ready, 'g'))] as RegExpExecArray[];
      if (matches.length < count) return;
      clearTimeout(timer);
      child.stdout?.off('data', check);
      done({ child, output: () => text, matches });
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => fail(new Error(`${main} exited with ${code}:\n${text}`)));
  });
}

async function stopProcess(child: ChildProcess): Promise<void> {
  stopping.add(child);
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((done) => child.once('exit', done));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

const DEMO_READY = /demo (\w+) listening on (http:\/\/\S+)/;

async function startDemo(services: string): Promise<Started & { urls: Map<string, string> }> {
  const count = services.split(',').length;
  const started = await startProcess(DEMO_MAIN, { DEMO_SERVICES: services }, DEMO_READY, count);
  return { ...started, urls: new Map(started.matches.map((m) => [m[1], m[2]])) };
}

// ---------------------------------------------------------------- /proc probes

interface Sample {
  t: number;
  rssMb: number;
  fds: number;
  sockets: number;
}

function probe(pid: number, t: number): Sample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? NaN);
  let fds = 0;
  let sockets = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      fds += 1;
      if (link.startsWith('socket:')) sockets += 1;
    } catch {
      // Closed between readdir and readlink.
    }
  }
  return { t, rssMb: rssKb / 1024, fds, sockets };
}

/** Least-squares slope of y over x. */
function slope(points: { x: number; y: number }[]): number {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

// ---------------------------------------------------------------- HTTP

interface Outcome {
  status?: number;
  headers?: IncomingHttpHeaders;
  body?: string;
  error?: string;
}

function exchange(
  port: number,
  agent: Agent | false,
  method: string,
  path: string,
  id: string,
  opts: { body?: Buffer; abortAfterMs?: number } = {},
): Promise<Outcome> {
  return new Promise((done) => {
    const req = request({
      host: '127.0.0.1',
      port,
      method,
      path,
      agent,
      headers: {
        'x-request-id': id,
        ...(opts.body ? { 'content-length': String(opts.body.length) } : {}),
      },
    });
    let timer: NodeJS.Timeout | undefined;
    const finish = (outcome: Outcome) => {
      clearTimeout(timer);
      done(outcome);
    };
    req.on('error', (err) => finish({ error: (err as NodeJS.ErrnoException).code ?? err.message }));
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('error', (err) => finish({ error: err.message }));
      res.on('aborted', () => finish({ status: res.statusCode, error: 'aborted' }));
      res.on('end', () => {
        if (!res.complete) finish({ status: res.statusCode, error: 'incomplete' });
        else finish({ status: res.statusCode, headers: res.headers, body });
      });
    });
    if (opts.abortAfterMs !== undefined) {
      timer = setTimeout(() => {
        req.destroy();
        done({ error: 'client-abort' });
      }, opts.abortAfterMs);
      // An upload that is cut while its body is still streaming.
      if (opts.body) {
        req.write(opts.body.subarray(0, opts.body.length >> 1));
        return;
      }
    }
    req.end(opts.body);
  });
}

// ---------------------------------------------------------------- tallies

type Kind =
  | 'load'
  | 'load-kira'
  | 'reset'
  | 'reset-after-headers'
  | 'client-abort'
  | 'upload-abort'
  | 'slowloris';

class Tally {
  ok = 0;
  expected = new Map<string, number>();
  unexpected = new Map<string, number>();
  misrouted = 0;
  examples: string[] = [];

  expect(kind: Kind, what: string): void {
    const key = `${kind}: ${what}`;
    this.expected.set(key, (this.expected.get(key) ?? 0) + 1);
  }

  fail(kind: Kind, what: string, detail: string): void {
    const key = `${kind}: ${what}`;
    this.unexpected.set(key, (this.unexpected.get(key) ?? 0) + 1);
    if (this.examples.length < 20) this.examples.push(`${key} ${detail}`);
  }

  total(map: Map<string, number>): number {
    return [...map.values()].reduce((s, n) => s + n, 0);
  }
}

/** True when the response carries our id both in its header and in the echoed request. */
function isOurs(outcome: Outcome, id: string, path: string): boolean {
  if (outcome.headers?.['x-request-id'] !== id) return false;
  try {
    const echo = JSON.parse(outcome.body ?? '') as {
      url?: string;
      headers?: Record<string, string>;
    };
    return echo.url === path && echo.headers?.['x-request-id'] === id;
  } catch {
    return false;
  }
}

function isErrorBodyFor(outcome: Outcome, id: string, status: number[]): boolean {
  if (outcome.status === undefined || !status.includes(outcome.status)) return false;
  if (outcome.headers?.['x-request-id'] !== id) return false;
  try {
    const body = JSON.parse(outcome.body ?? '') as { requestId?: string; statusCode?: number };
    return body.requestId === id && body.statusCode === outcome.status;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const { minutes } = readOptions(process.argv.slice(2));
  const durationMs = minutes * 60_000;
  const warmupMs = Math.min(60_000, durationMs / 4);
  const deadAtMs = durationMs * 0.4;
  const deadForMs = Math.min(30_000, durationMs / 3);

  const demo = await startDemo('auth=0,file=0');
  let kira = await startDemo('kira=0');
  const kiraUrl = kira.urls.get('kira') as string;
  const kiraPort = new URL(kiraUrl).port;
  const closed = 'http://127.0.0.1:9';
  const gateway = await startProcess(
    GATEWAY_MAIN,
    {
      SERVICE_PORT: '0',
      HOST: '127.0.0.1',
      METRICS_PORT: '0',
      LOG_LEVEL: 'info',
      RATE_LIMIT_MAX: '0',
      AUTH_SERVICE_URL: demo.urls.get('auth') as string,
      FILE_SERVICE_URL: demo.urls.get('file') as string,
      KIRA_SERVICE_URL: kiraUrl,
      TENANT_SERVICE_URL: closed,
      ADMIN_SERVICE_URL: closed,
      VERA_SERVICE_URL: closed,
      CLEVERSCREEN_SERVICE_URL: closed,
      HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
      REQUEST_TIMEOUT_MS: '10000',
      HEALTH_CHECK_INTERVAL_MS: String(HEALTH_CHECK_INTERVAL_MS),
    },
    /listening on http:\/\/[^\s]+:(\d+)/,
    1,
    gatewayNodeFlags(ROOT),
  );
  const port = Number(gateway.matches[0][1]);
  const pid = gateway.child.pid as number;
  gateway.child.once('exit', () => {
    if (!stopping.has(gateway.child)) print(`gateway's last output:\n${gateway.output()}`);
  });
  print(`gateway pid ${pid} on 127.0.0.1:${port}; ${minutes} min, warm-up ${warmupMs / 1000} s`);

  const cleanup = async () => {
    await stopProcess(gateway.child);
    await stopProcess(demo.child);
    await stopProcess(kira.child);
  };

  try {
    await sleep(2000);
    const baseline = probe(pid, 0);
    print(
      `idle baseline: rss ${baseline.rssMb.toFixed(1)} MB, ${baseline.fds} fds, ${baseline.sockets} sockets`,
    );

    // Capacity: closed loop over keep-alive connections for 5 s.
    const capAgent = new Agent({ keepAlive: true, maxSockets: CAPACITY_CONCURRENCY });
    let capDone = 0;
    const capEnd = Date.now() + CAPACITY_MS;
    await Promise.all(
      Array.from({ length: CAPACITY_CONCURRENCY }, async () => {
        while (Date.now() < capEnd) {
          // The same work per request as the soak itself, verification included.
          const id = randomUUID();
          const path = `/api/auth/capacity/${id}`;
          const o = await exchange(port, capAgent, 'GET', path, id);
          if (o.status === 200 && isOurs(o, id, path)) capDone += 1;
        }
      }),
    );
    capAgent.destroy();
    const capacity = capDone / (CAPACITY_MS / 1000);
    const rate = Math.max(10, Math.round(capacity / 2));
    print(
      `capacity ${capacity.toFixed(0)} req/s (keep-alive, ${CAPACITY_CONCURRENCY} connections); soak at ${rate} req/s`,
    );
    await sleep(2000);

    const tally = new Tally();
    const agent = new Agent({ keepAlive: true, maxSockets: 256 });
    const started = Date.now();
    const elapsed = () => Date.now() - started;
    let kiraDeadFrom = Infinity;
    let kiraDeadUntil = -Infinity;
    const kiraMayFail = (at: number) => at >= kiraDeadFrom && at <= kiraDeadUntil + DEAD_GRACE_MS;
    let inFlight = 0;
    let issued = 0;
    let shed = 0;
    let seq = 0;
    const pending = new Set<Promise<void>>();
    const track = (p: Promise<void>) => {
      pending.add(p);
      void p.finally(() => pending.delete(p));
    };

    const load = (): void => {
      const id = `soak-${seq++}-${randomUUID()}`;
      const toKira = seq % 10 === 0;
      const post = seq % 3 === 0;
      const path = `${toKira ? '/api/kira' : post ? '/api/files' : '/api/auth'}/soak/${id}`;
      const kind: Kind = toKira ? 'load-kira' : 'load';
      const sentAt = elapsed();
      inFlight += 1;
      track(
        exchange(port, agent, post ? 'POST' : 'GET', path, id, {
          body: post ? Buffer.from(`body of ${id}`) : undefined,
        }).then((o) => {
          inFlight -= 1;
          if (o.status === 200 && isOurs(o, id, path)) {
            tally.ok += 1;
          } else if (o.status === 200) {
            tally.misrouted += 1;
            tally.fail(kind, 'wrong response', `${id} got ${o.headers?.['x-request-id']}`);
          } else if (toKira && (kiraMayFail(sentAt) || kiraMayFail(elapsed()))) {
            if (isErrorBodyFor(o, id, [502, 503]) || o.error !== undefined) {
              tally.expect(kind, `kira down ${o.status ?? o.error}`);
            } else {
              tally.fail(kind, `status ${o.status}`, o.body ?? '');
            }
          } else {
            tally.fail(
              kind,
              `${o.status ?? ''} ${o.error ?? ''}`.trim(),
              `${path} ${o.body ?? ''}`,
            );
          }
        }),
      );
    };

    const fault = (kind: Kind): void => {
      const id = `fault-${seq++}-${randomUUID()}`;
      const run = async () => {
        switch (kind) {
          case 'reset': {
            const o = await exchange(port, agent, 'GET', `/api/files/reset?id=${id}`, id);
            if (isErrorBodyFor(o, id, [502])) tally.expect(kind, '502');
            else tally.fail(kind, `${o.status ?? o.error}`, o.body ?? '');
            return;
          }
          case 'reset-after-headers': {
            const o = await exchange(
              port,
              agent,
              'GET',
              `/api/files/reset-after-headers?id=${id}`,
              id,
            );
            // A cut connection, never a short response that looks complete.
            if (o.error !== undefined) tally.expect(kind, 'cut');
            else tally.fail(kind, `complete ${o.status}`, `${o.body?.length} bytes`);
            return;
          }
          case 'client-abort': {
            const o = await exchange(port, false, 'GET', `/api/auth/delay?ms=2000&id=${id}`, id, {
              abortAfterMs: 100,
            });
            if (o.error === 'client-abort') tally.expect(kind, 'aborted by client');
            else tally.fail(kind, `${o.status ?? o.error}`, o.body ?? '');
            return;
          }
          case 'upload-abort': {
            const o = await exchange(port, false, 'POST', `/api/files/upload/${id}`, id, {
              body: Buffer.alloc(64 * 1024, 1),
              abortAfterMs: 100,
            });
            if (o.error === 'client-abort') tally.expect(kind, 'aborted by client');
            else tally.fail(kind, `${o.status ?? o.error}`, o.body ?? '');
            return;
          }
          case 'slowloris': {
            const verdict = await slowloris(port);
            if (verdict === '408 and closed') tally.expect(kind, verdict);
            else tally.fail(kind, verdict, '');
            return;
          }
          default:
            throw new Error(`no fault ${kind}`);
        }
      };
      track(run());
    };

    // Faults on a schedule: every tick of one second, some fire.
    const faultTimer = setInterval(() => {
      const s = Math.floor(elapsed() / 1000);
      if (s % 2 === 0) fault('reset');
      if (s % 2 === 1) fault('reset-after-headers');
      fault('client-abort');
      if (s % 3 === 0) fault('upload-abort');
      if (s % 3 === 1) fault('slowloris');
    }, 1000);

    // The dead upstream: kira killed, then restarted on the same port.
    const deadTimer = setTimeout(() => {
      kiraDeadFrom = elapsed();
      kiraDeadUntil = Infinity;
      print(`  t=${(kiraDeadFrom / 1000).toFixed(0)}s kira killed for ${deadForMs / 1000} s`);
      void stopProcess(kira.child);
      setTimeout(() => {
        void startDemo(`kira=${kiraPort}`).then((k) => {
          kira = k;
          kiraDeadUntil = elapsed();
          print(`  t=${(kiraDeadUntil / 1000).toFixed(0)}s kira back on port ${kiraPort}`);
        });
      }, deadForMs);
    }, deadAtMs);

    // Open loop: requests are issued on schedule whatever the latency.
    const loadTimer = setInterval(() => {
      const due = Math.floor((elapsed() / 1000) * rate) - issued;
      for (let i = 0; i < due; i += 1) {
        issued += 1;
        if (inFlight >= MAX_IN_FLIGHT) shed += 1;
        else load();
      }
    }, 5);

    const samples: Sample[] = [];
    print();
    print(
      '     t   req/s  in-flight   ok      expected  unexpected  rss MB   fds  sockets  demo rss MB',
    );
    let lastOk = 0;
    let n = 0;
    while (elapsed() < durationMs) {
      await sleep(SAMPLE_EVERY_MS);
      const sample = probe(pid, elapsed());
      samples.push(sample);
      n += 1;
      if (n % PRINT_EVERY_SAMPLES === 0) {
        const rps = (tally.ok - lastOk) / ((SAMPLE_EVERY_MS * PRINT_EVERY_SAMPLES) / 1000);
        lastOk = tally.ok;
        print(
          `${(sample.t / 1000).toFixed(0).padStart(6)}s ${rps.toFixed(0).padStart(6)} ${String(inFlight).padStart(9)} ` +
            `${String(tally.ok).padStart(8)} ${String(tally.total(tally.expected)).padStart(9)} ` +
            `${String(tally.total(tally.unexpected)).padStart(10)} ${sample.rssMb.toFixed(1).padStart(8)} ` +
            `${String(sample.fds).padStart(5)} ${String(sample.sockets).padStart(8)} ` +
            `${probe(demo.child.pid as number, 0)
              .rssMb.toFixed(1)
              .padStart(12)}`,
        );
      }
    }
    clearInterval(loadTimer);
    clearInterval(faultTimer);
    clearTimeout(deadTimer);
    await Promise.race([Promise.all(pending), sleep(10_000)]);
    agent.destroy();
    while (kiraDeadUntil === Infinity) await sleep(200);

    // FDs back to baseline once the clients and the idle pools have let go.
    let end = probe(pid, elapsed());
    const settleUntil = Date.now() + 15_000;
    while (end.fds > baseline.fds && Date.now() < settleUntil) {
      await sleep(500);
      end = probe(pid, elapsed());
    }

    const after = samples.filter((s) => s.t >= warmupMs);
    const growthPer10Min =
      after.length > 2 ? slope(after.map((s) => ({ x: s.t, y: s.rssMb }))) * 600_000 : NaN;
    const gatewayAlive = gateway.child.exitCode === null && gateway.child.signalCode === null;
    const unexpected = tally.total(tally.unexpected) + shed;

    print();
    print(
      `requests: ${issued} issued at ${rate} req/s, ${tally.ok} verified, ${shed} shed (in-flight cap)`,
    );
    print(`responses at the wrong client: ${tally.misrouted}`);
    print('expected errors (from injected faults):');
    for (const [k, v] of [...tally.expected].sort()) print(`  ${k}: ${v}`);
    print(`unexpected errors: ${unexpected}`);
    for (const [k, v] of tally.unexpected) print(`  ${k}: ${v}`);
    for (const example of tally.examples) print(`    e.g. ${example}`);
    print(
      `rss: baseline ${baseline.rssMb.toFixed(1)} MB, after warm-up ${after[0]?.rssMb.toFixed(1)} MB, ` +
        `end ${end.rssMb.toFixed(1)} MB; trend after warm-up ${growthPer10Min.toFixed(2)} MB per 10 min ` +
        `(least squares over ${after.length} samples)`,
    );
    print(
      `fds: baseline ${baseline.fds}, end ${end.fds}; sockets: baseline ${baseline.sockets}, end ${end.sockets}`,
    );

    const checks: [string, boolean][] = [
      ['gateway still running', gatewayAlive],
      ['0 unexpected errors', unexpected === 0],
      ['0 responses at the wrong client', tally.misrouted === 0],
      [
        `rss growth < ${RSS_LIMIT_MB_PER_10_MIN} MB per 10 min after warm-up`,
        growthPer10Min < RSS_LIMIT_MB_PER_10_MIN,
      ],
      ['fds back to baseline', end.fds <= baseline.fds],
    ];
    print();
    for (const [name, ok] of checks) print(`${ok ? 'PASS' : 'FAIL'}  ${name}`);
    const pass = checks.every(([, ok]) => ok);
    print(pass ? 'VERDICT: PASS' : 'VERDICT: FAIL');
    return pass ? 0 : 1;
  } finally {
    await cleanup();
  }
}

/** A client that dribbles one header line every 500 ms; resolves with what the gateway did. */
function slowloris(port: number): Promise<string> {
  return new Promise((done) => {
    const socket = connect(port, '127.0.0.1');
    const openedAt = Date.now();
    let text = '';
    let line = 0;
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.write('GET /api/auth/slowloris HTTP/1.1\r\nHost: soak\r\n');
    const drip = setInterval(() => {
      if (!socket.destroyed && socket.writable) socket.write(`X-Drip-${line++}: y\r\n`);
    }, 500);
    const limit = setTimeout(() => {
      socket.destroy();
      done(`still open after ${HEADERS_TIMEOUT_MS + 3000} ms`);
    }, HEADERS_TIMEOUT_MS + 3000);
    socket.on('close', () => {
      clearInterval(drip);
      clearTimeout(limit);
      if (Date.now() - openedAt > HEADERS_TIMEOUT_MS + 3000) return;
      done(
        text.startsWith('HTTP/1.1 408 ')
          ? '408 and closed'
          : `closed with ${JSON.stringify(text.slice(0, 40))}`,
      );
    });
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
