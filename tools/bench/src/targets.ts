import { resolve } from 'node:path';
// The tools are scripts run by Node's type stripping, not Nx libraries: they share this one
// file, which reads the image's node flags, by path.
// eslint-disable-next-line @nx/enforce-module-boundaries
import { gatewayNodeFlags } from '../../scripts/production-command.mts';
import {
  type ProcessGroup,
  reserveFreePort,
  type ServiceProcess,
  waitForListeningUrl,
} from './processes.ts';

export const ROOT = resolve(import.meta.dirname, '../../..');
/** What every target is asked: the auth upstream's echo, 537 bytes of JSON through a proxy. */
export const PATH = '/api/auth/health';
export const HEADERS = { origin: 'http://bench.example', 'accept-encoding': 'gzip, br' };
export const START_TIMEOUT_MS = 15_000;

export async function startUpstream(group: ProcessGroup): Promise<string> {
  const upstream = group.spawn(
    'demo auth upstream',
    resolve(ROOT, 'dist/apps/demo-services/main.js'),
    { DEMO_SERVICES: 'auth=0' },
    ROOT,
  );
  return waitForListeningUrl(upstream, START_TIMEOUT_MS);
}

/**
 * The gateway with every edge feature on and out of the way of the load: CORS for the
 * benchmark's Origin, a rate limit too high to trip, and every service pointed at the one
 * upstream so the background health checks succeed instead of failing DNS look-ups.
 */
export async function gatewayEnvironment(upstreamUrl: string): Promise<Record<string, string>> {
  const services = ['AUTH', 'TENANT', 'ADMIN', 'FILE', 'KIRA', 'VERA', 'CLEVERSCREEN'];
  const observabilityOff = process.env['BENCH_OBSERVABILITY'] === 'off';
  return {
    NODE_ENV: 'production',
    // Every edge feature on, the access log and metrics included, unless BENCH_OBSERVABILITY=off.
    LOG_LEVEL: 'info',
    ...(observabilityOff ? { ACCESS_LOG: 'false' } : {}),
    HOST: '127.0.0.1',
    SERVICE_PORT: String(await reserveFreePort()),
    METRICS_PORT: observabilityOff ? '0' : String(await reserveFreePort()),
    CORS_ORIGIN: HEADERS.origin,
    RATE_LIMIT_MAX: '100000000',
    ...Object.fromEntries(services.map((s) => [`${s}_SERVICE_URL`, upstreamUrl])),
  };
}

/** How often the DNS-discovery gateway resolves its names again: the gateway's shortest. */
export const DNS_REFRESH_MS = 1000;

/**
 * The same gateway, its services named by `host` (which `dnsServer` resolves to 127.0.0.1)
 * instead of by address, with DNS discovery on: its seven names are looked up again every second
 * all through the load, so what discovery costs the request path shows beside the static gateway.
 */
export async function dnsGatewayEnvironment(
  upstreamUrl: string,
  host: string,
  dnsServer: string,
): Promise<Record<string, string>> {
  const named = new URL(upstreamUrl);
  named.hostname = host;
  return {
    ...(await gatewayEnvironment(named.origin)),
    UPSTREAM_DISCOVERY: 'dns',
    DNS_SERVERS: dnsServer,
    DNS_REFRESH_MS: String(DNS_REFRESH_MS),
  };
}

/** The built gateway as the image starts it; `extraFlags` go after the Dockerfile's own. */
export function spawnGateway(
  group: ProcessGroup,
  env: Record<string, string>,
  extraFlags: readonly string[] = [],
): ServiceProcess {
  return group.spawn(
    'gateway',
    resolve(ROOT, 'dist/apps/api-gateway/main.js'),
    env,
    resolve(ROOT, 'dist/apps/api-gateway'),
    [...gatewayNodeFlags(ROOT), ...extraFlags],
  );
}

/**
 * A reference proxy from this folder, in front of `upstreamUrl`, once it listens; `env` adds to
 * its environment (the bare Node proxy's TLS pair).
 */
export async function startBaseline(
  group: ProcessGroup,
  name: string,
  file: string,
  upstreamUrl: string,
  nodeFlags: readonly string[] = [],
  env: Record<string, string> = {},
): Promise<{ service: ServiceProcess; url: string }> {
  const service = group.spawn(
    name,
    resolve(import.meta.dirname, file),
    { ...env, UPSTREAM_URL: upstreamUrl },
    ROOT,
    nodeFlags,
  );
  return { service, url: await waitForListeningUrl(service, START_TIMEOUT_MS) };
}
