import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpRequest } from './http-client';

/** The built gateway, as `npx nx build api-gateway` leaves it. */
export const GATEWAY_MAIN = resolve(__dirname, '../../../../../dist/apps/api-gateway/main.js');

export interface GatewayProcess {
  /** `http://127.0.0.1:<port>`, or `https://127.0.0.1:<port>` when started with `tls`. */
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

export interface StartGatewayOptions {
  /** How long the gateway may take to listen (and, with `tls`, to answer); default 10 s. */
  timeoutMs?: number;
  /**
   * The gateway speaks TLS on its public port (the env sets TLS_CERT_FILE and TLS_KEY_FILE):
   * it counts as started once `GET /heartbeat` over HTTPS, trusting only `ca`, answers 200.
   */
  tls?: { ca: string };
}

const LISTENING = /listening on (?:https?:\/\/)?[^\s"]+:(\d+)/;
const READINESS_POLL_MS = 50;

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
 * Polls `GET /heartbeat` over HTTPS until it answers 200: the log line says the socket is bound,
 * not that it completes TLS handshakes with the certificate it was given.
 */
async function waitForHttps(
  port: number,
  ca: string,
  deadline: number,
  exited: () => boolean,
): Promise<void> {
  let last = 'no answer';
  while (Date.now() < deadline && !exited()) {
    try {
      const res = await httpRequest(`https://127.0.0.1:${port}/heartbeat`, { ca });
      if (res.status === 200) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(READINESS_POLL_MS);
  }
  throw new Error(`gateway did not answer https://127.0.0.1:${port}/heartbeat: ${last}`);
}

/**
 * Starts the built gateway as a child process on 127.0.0.1 and a free port, with only the
 * given environment, and resolves once it listens (with `tls`, once it answers over HTTPS).
 */
export async function startGateway(
  env: Record<string, string> = {},
  options: StartGatewayOptions = {},
): Promise<GatewayProcess> {
  const { timeoutMs = 10_000, tls } = options;
  const deadline = Date.now() + timeoutMs;
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
  if (tls) {
    try {
      await waitForHttps(port, tls.ca, deadline, () => child.exitCode !== null);
    } catch (err) {
      child.kill('SIGKILL');
      throw new Error(`${(err as Error).message}\n${output()}`);
    }
  }
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
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
