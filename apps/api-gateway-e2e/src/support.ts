import { setTimeout as sleep } from 'node:timers/promises';
import { createServer } from 'node:net';
import { KNOWN_SERVICES } from '@helix/gateway-config';
import {
  type GatewayProcess,
  startGateway,
  type StartGatewayOptions,
  startStubUpstream,
  type StubUpstream,
} from '@helix/shared-testing';

export type ServiceName = keyof typeof KNOWN_SERVICES;
export const SERVICE_NAMES = Object.keys(KNOWN_SERVICES) as ServiceName[];

/** Starts one stub upstream per platform service, and the env that points the gateway at them. */
export async function startPlatformStubs(): Promise<{
  stubs: Record<ServiceName, StubUpstream>;
  env: Record<string, string>;
  close: () => Promise<void>;
}> {
  const started = await Promise.all(SERVICE_NAMES.map((name) => startStubUpstream({ name })));
  const stubs = Object.fromEntries(started.map((s) => [s.name, s])) as Record<
    ServiceName,
    StubUpstream
  >;
  const env = Object.fromEntries(
    SERVICE_NAMES.map((name) => [KNOWN_SERVICES[name].env, stubs[name].url]),
  );
  return { stubs, env, close: async () => void (await Promise.all(started.map((s) => s.close()))) };
}

/** A loopback port on which nothing listens (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** What `promise` resolves to, or `fallback` once `ms` have passed; no timer is left behind. */
/** Polls `check` every 25 ms until it holds; resolves with the time it took, throws past `timeoutMs`. */
export async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`not within ${timeoutMs} ms`);
    await sleep(25);
  }
  return Date.now() - started;
}

export async function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<F>((resolve) => (timer = setTimeout(() => resolve(fallback), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The seven stub services and a built gateway pointed at them, for one suite. */
export interface Platform {
  readonly stubs: Record<ServiceName, StubUpstream>;
  readonly gateway: GatewayProcess;
}

/**
 * Starts the platform stubs and the gateway before the suite's tests and stops both after them.
 * `env` may add or override gateway variables; it runs inside beforeAll, so it may start things.
 * `options` (read after `env`) says how to start the gateway, e.g. with TLS.
 */
export function usePlatform(
  env: () => Record<string, string> | Promise<Record<string, string>> = () => ({}),
  options: () => StartGatewayOptions = () => ({}),
): Platform {
  const platform = {} as { stubs: Record<ServiceName, StubUpstream>; gateway: GatewayProcess };
  let closeStubs: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    const started = await startPlatformStubs();
    platform.stubs = started.stubs;
    closeStubs = started.close;
    platform.gateway = await startGateway({ ...started.env, ...(await env()) }, options());
  });
  afterAll(async () => {
    await platform.gateway?.stop();
    await closeStubs?.();
  });
  return platform;
}

/** One stub upstream for a platform service, started before the suite's tests, closed after. */
export function useStub(service: ServiceName): { readonly stub: StubUpstream } {
  const fixture = {} as { stub: StubUpstream };
  beforeAll(async () => {
    fixture.stub = await startStubUpstream({ name: service });
  });
  afterAll(async () => {
    await fixture.stub?.close();
  });
  return fixture;
}

/** A stub for `service` and a built gateway routing that service to it, for one suite. */
export interface StubbedGateway {
  readonly stub: StubUpstream;
  readonly gateway: GatewayProcess;
}

/**
 * Like usePlatform with one stub: `service` (auth unless named) goes to it, every other service
 * keeps its default URL. `env` adds gateway variables and runs inside beforeAll; `options`
 * (read after `env`) says how to start the gateway.
 */
export function useStubbedGateway(
  env: () => Record<string, string> | Promise<Record<string, string>> = () => ({}),
  service: ServiceName = 'auth',
  options: () => StartGatewayOptions = () => ({}),
): StubbedGateway {
  const fixture = {} as { stub: StubUpstream; gateway: GatewayProcess };
  beforeAll(async () => {
    fixture.stub = await startStubUpstream({ name: service });
    fixture.gateway = await startGateway(
      { [KNOWN_SERVICES[service].env]: fixture.stub.url, ...(await env()) },
      options(),
    );
  });
  afterAll(async () => {
    await fixture.gateway?.stop();
    await fixture.stub?.close();
  });
  return fixture;
}
