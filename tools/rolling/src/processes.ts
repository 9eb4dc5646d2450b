import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const POLL_INTERVAL_MS = 20;
const STOP_GRACE_MS = 5000;

/** A child process with everything it printed. */
export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  output(): string;
}

/**
 * Every process the check starts. Each one is killed when the check exits, however it exits,
 * so a failed or interrupted run leaves no server behind.
 */
export class ProcessGroup {
  private readonly children = new Set<ChildProcess>();

  constructor() {
    process.once('exit', () => {
      for (const child of this.children) child.kill('SIGKILL');
    });
    for (const [signal, code] of [
      ['SIGINT', 130],
      ['SIGTERM', 143],
    ] as const) {
      process.once(signal, () => process.exit(code));
    }
  }

  spawn(name: string, command: string, args: string[], env: Record<string, string> = {}): Child {
    const child = spawn(command, args, {
      env: { PATH: process.env['PATH'] ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
    return { name, process: child, output: () => text };
  }

  /** SIGTERM to every child still running, SIGKILL to those still there after a grace period. */
  async stop(): Promise<void> {
    await Promise.all([...this.children].map((child) => terminate(child)));
  }
}

/** SIGTERM, SIGKILL after a grace period; resolves with the exit code (null when killed). */
export async function terminate(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = once(child, 'exit') as Promise<[number | null]>;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  const [code] = await exited;
  clearTimeout(timer);
  return code;
}

export function failure(child: Child, what: string): Error {
  return new Error(`${child.name} ${what}; it printed:\n${child.output()}`);
}

/** Waits until the child prints something matching `pattern`. */
export async function waitForOutput(child: Child, pattern: RegExp, timeoutMs: number) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec(child.output());
    if (match) return match;
    if (child.process.exitCode !== null)
      throw failure(child, `exited with ${child.process.exitCode}`);
    if (performance.now() > deadline) throw failure(child, `did not print ${pattern} in time`);
    await sleep(POLL_INTERVAL_MS);
  }
}

/** One GET on a fresh connection: the status and the body, or null when it fails. */
export function get(
  url: string,
  localAddress?: string,
): Promise<{ status: number; body: string } | null> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, localAddress }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve(null));
    });
    req.once('error', () => resolve(null));
  });
}

/** Polls `url` until it answers 200. */
export async function waitForOk(child: Child, url: string, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if ((await get(url))?.status === 200) return;
    if (child.process.exitCode !== null)
      throw failure(child, `exited with ${child.process.exitCode}`);
    if (performance.now() > deadline) throw failure(child, `gave no 200 from ${url} in time`);
    await sleep(POLL_INTERVAL_MS);
  }
}

/** A port the OS just handed out on 127.0.0.1, for a server that must keep it across restarts. */
export async function reserveFreePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}
