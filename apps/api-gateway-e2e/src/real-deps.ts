import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { closedPort } from './support';

export const REDIS_SERVER = '/usr/bin/redis-server';
export const CHROMIUM = '/usr/bin/chromium';

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
    child = spawn(
      REDIS_SERVER,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`redis-server did not start:\n${out}`)),
        10_000,
      );
      child?.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child?.once('exit', (code) => reject(new Error(`redis-server exited with ${code}:\n${out}`)));
    });
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
