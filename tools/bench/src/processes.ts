import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  rmSync,
} from 'node:fs';
import http from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

// The gateway says https:// when it serves TLS (HTTP/2 and HTTP/1.1 by ALPN).
const LISTENING = /listening on (https?:\/\/127\.0\.0\.1:\d+)/;
const STOP_GRACE_MS = 3000;
const POLL_INTERVAL_MS = 5;
const MAX_OUTPUT_CHARS = 64 * 1024;

/** A child process, with the start of what it printed. */
export interface ServiceProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** `performance.now()` just before the spawn. */
  readonly spawnedAt: number;
  output(): string;
}

/**
 * Every child the benchmark starts. Each one is killed when the benchmark exits, however it
 * exits, so a failed or interrupted run leaves no server behind.
 */
export class ProcessGroup {
  private readonly children = new Set<ChildProcess>();
  private readonly dir = mkdtempSync(join(tmpdir(), 'helix-bench-'));

  constructor() {
    process.once('exit', () => {
      this.kill();
      rmSync(this.dir, { recursive: true, force: true });
    });
    for (const [signal, code] of [
      ['SIGINT', 130],
      ['SIGTERM', 143],
    ] as const) {
      process.once(signal, () => {
        this.kill();
        process.exit(code);
      });
    }
  }

  /**
   * Starts `script` on `process.execPath` with only `env` (plus PATH) and `nodeFlags`. What the
   * child prints goes to a file, as a container runtime's log driver takes it: read through a
   * pipe by this process instead, the gateway's access log would cost the load generator's
   * event loop a read per batch of lines and show up in the latency it measures.
   */
  spawn(
    name: string,
    script: string,
    env: Record<string, string>,
    cwd: string,
    nodeFlags: readonly string[] = [],
  ): ServiceProcess {
    return this.spawnCommand(name, process.execPath, [...nodeFlags, script], env, cwd);
  }

  /** Starts a program that is not a Node script (nginx), the same way. */
  spawnCommand(
    name: string,
    command: string,
    args: readonly string[],
    env: Record<string, string>,
    cwd: string,
  ): ServiceProcess {
    const logFile = join(this.dir, `${this.children.size}-${name.replace(/\W+/g, '-')}.log`);
    const log = openSync(logFile, 'w');
    const spawnedAt = performance.now();
    const child = spawn(command, args, {
      cwd,
      env: { PATH: process.env['PATH'] ?? '', ...env },
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return { name, child, spawnedAt, output: () => readStart(logFile) };
  }

  /**
   * A new folder inside the group's own, removed with it when the benchmark exits, however it
   * exits. Readable by all: nginx's workers run as nobody when the benchmark runs as root.
   */
  makeDir(name: string): string {
    const dir = join(this.dir, name);
    mkdirSync(dir);
    chmodSync(this.dir, 0o755);
    chmodSync(dir, 0o755);
    return dir;
  }

  /** SIGTERM to every child, SIGKILL to those still running after a grace period. */
  async stop(): Promise<void> {
    await Promise.all([...this.children].map((child) => stopChild(child)));
  }

  /** Stops one child the same way. */
  async stopOne(service: ServiceProcess): Promise<void> {
    await stopChild(service.child);
  }

  private kill(): void {
    for (const child of this.children) child.kill('SIGKILL');
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

/** The first MAX_OUTPUT_CHARS of a child's log: enough for its start-up lines and errors. */
function readStart(file: string): string {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(MAX_OUTPUT_CHARS);
    return buffer.toString('utf8', 0, readSync(fd, buffer, 0, MAX_OUTPUT_CHARS, 0));
  } finally {
    closeSync(fd);
  }
}

/** The path of `command` on PATH or in /usr/sbin (nginx's, off a non-root PATH). */
export function findCommand(command: string, debianPackage: string): string {
  for (const dir of [...(process.env['PATH'] ?? '').split(':'), '/usr/sbin', '/usr/bin']) {
    const path = join(dir, command);
    if (dir && existsSync(path)) return path;
  }
  throw new Error(`${command} not found: apt-get install ${debianPackage}`);
}

export function failure(service: ServiceProcess, what: string): Error {
  return new Error(`${service.name} ${what}; it printed:\n${service.output()}`);
}

/** Resolves with the `http://` or `https://127.0.0.1:PORT` the child prints once it listens. */
export async function waitForListeningUrl(
  service: ServiceProcess,
  timeoutMs: number,
): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const match = LISTENING.exec(service.output());
    if (match) return match[1];
    if (service.child.exitCode !== null)
      throw failure(service, `exited with ${service.child.exitCode}`);
    if (performance.now() > deadline)
      throw failure(service, `did not listen within ${timeoutMs} ms`);
    await sleep(POLL_INTERVAL_MS);
  }
}

function answersOk(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('error', () => resolve(false));
  });
}

/** Polls `url` until it answers 200; resolves with `performance.now()` at that answer. */
export async function waitForOk(
  service: ServiceProcess,
  url: string,
  timeoutMs: number,
): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await answersOk(url)) return performance.now();
    if (service.child.exitCode !== null)
      throw failure(service, `exited with ${service.child.exitCode}`);
    if (performance.now() > deadline)
      throw failure(service, `gave no 200 from ${url} within ${timeoutMs} ms`);
    await sleep(POLL_INTERVAL_MS);
  }
}

/**
 * A port the OS just handed out on 127.0.0.1, for a child that cannot report its own: the
 * gateway prints its address only at LOG_LEVEL=info and above.
 */
export async function reserveFreePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}
