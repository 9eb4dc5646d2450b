import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** The built gateway, as `npx nx build api-gateway` leaves it. */
export const GATEWAY_MAIN = resolve(__dirname, '../../../../../dist/apps/api-gateway/main.js');

export interface GatewayProcess {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** Everything the process printed so far, stdout and stderr. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

export interface ExitedProcess {
  readonly code: number | null;
  readonly output: string;
}

const LISTENING = /listening on http:\/\/[^\s]+:(\d+)/;

function spawnGateway(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  if (!existsSync(GATEWAY_MAIN)) {
    throw new Error(`${GATEWAY_MAIN} is missing: run npx nx build api-gateway first`);
  }
  const child = spawn(process.execPath, [GATEWAY_MAIN], {
    cwd: resolve(__dirname, '../../../../..', 'dist'),
    env: {
      SERVICE_PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      METRICS_PORT: '0',
      // Suites send thousands of requests from one address; rate-limit suites set their own.
      RATE_LIMIT_MAX: '1000000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { child, output: () => text };
}

/**
 * Starts the built gateway as a child process on 127.0.0.1 and a free port, with only the
 * given environment, and resolves once it listens.
 */
export async function startGateway(
  env: Record<string, string> = {},
  timeoutMs = 10_000,
): Promise<GatewayProcess> {
  const { child, output } = spawnGateway(env);
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(
      () => fail(new Error(`gateway did not listen within ${timeoutMs} ms:\n${output()}`)),
      timeoutMs,
    );
    const onData = () => {
      const match = LISTENING.exec(output());
      if (match) done(Number(match[1]));
    };
    const onExit = (code: number | null) =>
      fail(new Error(`gateway exited with ${code}:\n${output()}`));
    function cleanup() {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
    }
    function done(p: number) {
      cleanup();
      resolvePort(p);
    }
    function fail(err: Error) {
      cleanup();
      child.kill('SIGKILL');
      reject(err);
    }
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    output,
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const [code] = (await exited) as [number | null];
      clearTimeout(timer);
      return code;
    },
  };
}

/** Runs the gateway until it exits by itself (a bad configuration must), with a time limit. */
export async function runGatewayToExit(
  env: Record<string, string>,
  timeoutMs = 10_000,
): Promise<ExitedProcess> {
  const { child, output } = spawnGateway(env);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, output: output() };
}
