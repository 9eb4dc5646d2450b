import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { closedPort } from './support';

export const REDIS_SERVER = '/usr/bin/redis-server';
export const CHROMIUM = '/usr/bin/chromium';

// As the machine's probe starts it: no sandbox as root, and none of Chromium's background
// connections, which this closed network refuses.
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Registers a suite that needs a real program. Without it the suite is skipped with a one-line
 * reason, unless REQUIRE_REAL_DEPS=1 (CI), where its absence fails the run.
 */
export function describeWith(binary: string, title: string, suite: () => void): void {
  if (existsSync(binary)) {
    describe(title, suite);
  } else if (process.env.REQUIRE_REAL_DEPS === '1') {
    describe(title, () => {
      it(`needs ${binary}`, () => {
        throw new Error(`${binary} is required (REQUIRE_REAL_DEPS=1) but is not installed`);
      });
    });
  } else {
    process.stderr.write(`skipped "${title}": ${binary} is not installed (apt-get install it)\n`);
    // Reported as a to-do with the reason, not run: nothing passes that did not run.
    describe(title, () => it.todo(`needs ${binary}, which is not installed`));
  }
}

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
}

/** A real Debian redis-server on a free loopback port, with no persistence. */
export async function startRedis(): Promise<RedisServer> {
  const port = await closedPort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = await spawnReady(
      REDIS_SERVER,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      'Ready to accept connections',
    );
  };
  const stop = async () => {
    if (!child || child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  };
  await start();
  return { url: `redis://127.0.0.1:${port}`, port, stop, start };
}

export const DNSMASQ = '/usr/sbin/dnsmasq';

export interface DnsServer {
  /** `127.0.0.1:<port>`, as DNS_SERVERS takes it. */
  readonly address: string;
  /** Replaces the names it answers (`ip name` lines) and makes it re-read them (SIGHUP). */
  setHosts(lines: readonly string[]): Promise<void>;
  /** SIGSTOP: queries hang unanswered, as a resolver that went away. */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

/**
 * A real Debian dnsmasq on a free loopback port, answering only from its own hosts file
 * with a 1 s TTL (`--local=/test/`: no name under `.test` is ever forwarded).
 */
export async function startDnsmasq(lines: readonly string[]): Promise<DnsServer> {
  const dir = mkdtempSync(join(tmpdir(), 'helix-dnsmasq-'));
  const hosts = join(dir, 'hosts');
  writeFileSync(hosts, `${lines.join('\n')}\n`);
  const port = await closedPort();
  const child = spawn(
    DNSMASQ,
    [
      '--keep-in-foreground',
      `--port=${port}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--no-resolv',
      '--no-hosts',
      `--addn-hosts=${hosts}`,
      '--local=/test/',
      '--local-ttl=1',
      '--cache-size=0',
      `--pid-file=${join(dir, 'pid')}`,
      '--user=root',
      '--log-facility=-',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const onOutput = (chunk: Buffer) => (out += chunk.toString());
  child.stdout?.on('data', onOutput);
  child.stderr?.on('data', onOutput);
  const readCount = () => (out.match(/read .*hosts - \d+ names?/g) ?? []).length;
  const until = async (check: () => boolean, what: string) => {
    for (let i = 0; i < 200 && !check(); i++) await sleep(25);
    if (!check()) throw new Error(`dnsmasq ${what}:\n${out}`);
  };
  await until(() => readCount() > 0 || child.exitCode !== null, 'did not start');
  if (child.exitCode !== null) throw new Error(`dnsmasq exited with ${child.exitCode}:\n${out}`);
  return {
    address: `127.0.0.1:${port}`,
    setHosts: async (next) => {
      const before = readCount();
      writeFileSync(hosts, `${next.join('\n')}\n`);
      child.kill('SIGHUP');
      await until(() => readCount() > before, 'did not re-read its hosts file');
    },
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited;
    },
  };
}

export const REDIS_SENTINEL = '/usr/bin/redis-sentinel';

/** A real process that prints `ready` when it can serve. */
async function spawnReady(
  binary: string,
  args: readonly string[],
  ready: string,
): Promise<ChildProcess> {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${binary} did not start:\n${out}`)), 10_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes(ready)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`${binary} exited with ${code}:\n${out}`)));
  });
  return child;
}

export interface SentinelCluster {
  /** `127.0.0.1:<port>,…`, as REDIS_SENTINELS takes them. */
  readonly sentinels: string;
  readonly name: string;
  readonly primaryPort: number;
  readonly replicaPort: number;
  /** SIGKILL to the primary: the Sentinels promote the replica. */
  killPrimary(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Redis as production runs it: a primary, a replica of it, and three Sentinels with a quorum
 * of two that promote the replica a second after the primary stops answering.
 */
export async function startSentinelCluster(): Promise<SentinelCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'helix-sentinel-'));
  const name = 'helix';
  const [primaryPort, replicaPort] = [await closedPort(), await closedPort()];
  const node = (port: number, extra: string[]) =>
    spawnReady(
      REDIS_SERVER,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra],
      'Ready to accept connections',
    );
  const primary = await node(primaryPort, []);
  const replica = await node(replicaPort, ['--replicaof', '127.0.0.1', String(primaryPort)]);
  const sentinelPorts: number[] = [];
  const sentinels: ChildProcess[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await closedPort();
    const file = join(dir, `sentinel-${i}.conf`);
    writeFileSync(
      file,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 2`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 3000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    );
    sentinelPorts.push(port);
    sentinels.push(await spawnReady(REDIS_SENTINEL, [file], 'Sentinel ID is'));
  }
  const kill = async (child: ChildProcess) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  };
  return {
    sentinels: sentinelPorts.map((port) => `127.0.0.1:${port}`).join(','),
    name,
    primaryPort,
    replicaPort,
    killPrimary: () => kill(primary),
    stop: async () => {
      await Promise.all([...sentinels, replica, primary].map(kill));
    },
  };
}

export const PROMETHEUS = '/usr/bin/prometheus';
export const PROMTOOL = '/usr/bin/promtool';

export interface PrometheusServer {
  /** `http://127.0.0.1:<port>`, its HTTP API under /api/v1. */
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * A real Debian prometheus with `config` (a prometheus.yml) on a free loopback port, its
 * storage in a temporary folder that stop() removes, ready once `/-/ready` answers 200.
 */
export async function startPrometheus(config: string): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), 'helix-prometheus-'));
  writeFileSync(join(dir, 'prometheus.yml'), config);
  const port = await closedPort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    PROMETHEUS,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`prometheus exited with ${child.exitCode}:\n${out}`);
    }
    const ready = await fetch(`${url}/-/ready`).then(
      (res) => res.status === 200,
      () => false,
    );
    if (ready) break;
    if (i === 300) {
      await stop();
      throw new Error(`prometheus was not ready within 15 s:\n${out}`);
    }
    await sleep(50);
  }
  return { url, stop };
}
