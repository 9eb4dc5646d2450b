import { existsSync, readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { parseEnv } from 'node:util';
import type { z } from 'zod';
import { envSchema, type GatewayEnv, KNOWN_SERVICES, type KnownService } from './env.schema';
import { type GatewayRoute, type RouteEntry, routeFileSchema } from './route.schema';
import { resolveTracing, SECRET_VARIABLES, type TracingConfig } from './tracing.schema';

export type GatewayConfig = GatewayEnv & {
  routes: GatewayRoute[];
  /** OpenTelemetry tracing, when an OTLP endpoint is set; undefined when off. */
  tracing: TracingConfig | undefined;
};

/** A configuration that must not start: its message is the one line an operator reads. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

/**
 * Reads the process environment, with a `.env` file from `cwd` underneath it: a variable
 * set in the real environment always wins over the file.
 */
export function readEnvironment(cwd = process.cwd(), env: Env = process.env): Env {
  const file = resolve(cwd, '.env');
  if (!existsSync(file)) return env;
  return { ...parseEnv(readFileSync(file, 'utf8')), ...env };
}

function describeValue(value: unknown): string {
  return value === undefined ? '(unset)' : JSON.stringify(value);
}

function envIssue(issue: z.core.$ZodIssue, env: Env): string {
  const name = String(issue.path[0]);
  const value = SECRET_VARIABLES.has(name) ? '(value not shown)' : describeValue(env[name]);
  return `Invalid configuration: ${name}=${value} ${issue.message}`;
}

function routeIssue(issue: z.core.$ZodIssue, file: string, document: unknown): string {
  const [, index, key] = issue.path;
  let where = issue.path.length === 0 ? '' : ` ${issue.path.join('.')}`;
  if (typeof index === 'number') {
    const route = (document as { routes: unknown[] }).routes[index] as
      Record<string, unknown> | undefined;
    const name = typeof route?.prefix === 'string' ? ` (prefix ${route.prefix})` : '';
    where = ` routes[${index}]${name}${key === undefined ? '' : ` key "${String(key)}"`}`;
  }
  const detail =
    issue.code === 'unrecognized_keys'
      ? `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`
      : issue.message;
  return `Invalid configuration: GATEWAY_ROUTES_FILE=${file}${where}: ${detail}`;
}

function readRouteDocument(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `Invalid configuration: GATEWAY_ROUTES_FILE=${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  try {
    if (extname(file).toLowerCase() === '.json') return JSON.parse(text);
    // Required here, not imported: a gateway without a route file need not load the parser.
    const yaml = require('yaml') as typeof import('yaml');
    return yaml.parse(text);
  } catch (err) {
    throw new ConfigError(
      `Invalid configuration: GATEWAY_ROUTES_FILE=${file} is not valid ${extname(file) === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`,
    );
  }
}

/** The built-in table: the seven platform services on their contract prefixes. */
export function builtInRoutes(): RouteEntry[] {
  return Object.entries(KNOWN_SERVICES).map(([service, { prefix }]) => ({
    prefix,
    service,
    stripPrefix: false,
    websocket: true,
    retry: true,
  }));
}

function resolveRoutes(entries: RouteEntry[], env: GatewayEnv, source: string): GatewayRoute[] {
  const prefixes = new Set<string>();
  const serviceTargets = new Map<string, string>();
  return entries.map((entry, index) => {
    const where = `Invalid configuration: ${source} routes[${index}] (prefix ${entry.prefix})`;
    if (prefixes.has(entry.prefix)) throw new ConfigError(`${where}: prefix is listed twice`);
    prefixes.add(entry.prefix);
    const known = KNOWN_SERVICES[entry.service as KnownService] as
      (typeof KNOWN_SERVICES)[KnownService] | undefined;
    const targets = entry.targets ?? (known ? env[known.env] : undefined);
    if (!targets) {
      throw new ConfigError(
        `${where} key "targets": is required for service "${entry.service}", which is not one of ${Object.keys(KNOWN_SERVICES).join(', ')}`,
      );
    }
    // /health/<service> proxies to one service, so a service must mean one set of upstreams.
    const signature = targets.map((t) => t.href).join(',');
    const seen = serviceTargets.get(entry.service);
    if (seen !== undefined && seen !== signature) {
      throw new ConfigError(
        `${where} key "targets": service "${entry.service}" already has other targets (${seen})`,
      );
    }
    serviceTargets.set(entry.service, signature);
    return {
      ...entry,
      targets,
      timeoutMs: entry.timeoutMs ?? env.PROXY_TIMEOUT_MS,
      connectTimeoutMs: entry.connectTimeoutMs ?? env.CONNECT_TIMEOUT_MS,
      idleTimeoutMs: entry.idleTimeoutMs ?? env.STREAM_IDLE_TIMEOUT_MS,
      balance: entry.balance ?? 'round-robin',
      maxInFlight: entry.maxInFlight ?? env.UPSTREAM_MAX_IN_FLIGHT,
      discovery: entry.discovery ?? env.UPSTREAM_DISCOVERY,
    };
  });
}

/** Reads and validates a route file against the same schema as the built-in table. */
export function loadRouteFile(file: string, env: GatewayEnv): GatewayRoute[] {
  const document = readRouteDocument(file);
  const parsed = routeFileSchema.safeParse(document);
  if (!parsed.success) throw new ConfigError(routeIssue(parsed.error.issues[0], file, document));
  return resolveRoutes(parsed.data.routes, env, `GATEWAY_ROUTES_FILE=${file}`);
}

/**
 * Parses the whole configuration once, at boot. Throws a ConfigError whose message names the
 * variable, its value and the rule it broke.
 */
export function loadGatewayConfig(env: Env): GatewayConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(envIssue(parsed.error.issues[0], env));
  if (parsed.data.CORS_CREDENTIALS && parsed.data.CORS_ORIGIN === '*') {
    // Browsers refuse credentials with `Access-Control-Allow-Origin: *`, and echoing any origin
    // instead would hand every site the user's cookies.
    throw new ConfigError(
      'Invalid configuration: CORS_CREDENTIALS="true" needs CORS_ORIGIN to list origins; credentials are never allowed with *',
    );
  }
  const { HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS } = parsed.data;
  if (REQUEST_TIMEOUT_MS > 0 && HEADERS_TIMEOUT_MS > REQUEST_TIMEOUT_MS) {
    throw new ConfigError(
      `Invalid configuration: HEADERS_TIMEOUT_MS="${HEADERS_TIMEOUT_MS}" must not exceed REQUEST_TIMEOUT_MS="${REQUEST_TIMEOUT_MS}"`,
    );
  }
  const { REDIS_URL, REDIS_SENTINELS, REDIS_SENTINEL_NAME } = parsed.data;
  if (REDIS_SENTINELS && REDIS_URL) {
    throw new ConfigError(
      'Invalid configuration: REDIS_SENTINELS and REDIS_URL are both set; set one: a Redis by URL, or the Sentinels that name the primary',
    );
  }
  if (REDIS_SENTINELS && !REDIS_SENTINEL_NAME) {
    throw new ConfigError(
      'Invalid configuration: REDIS_SENTINEL_NAME=(unset) must name the primary the Sentinels monitor (their `sentinel monitor <name>`)',
    );
  }
  const { TLS_CERT_FILE, TLS_KEY_FILE } = parsed.data;
  if ((TLS_CERT_FILE === undefined) !== (TLS_KEY_FILE === undefined)) {
    const missing = TLS_CERT_FILE === undefined ? 'TLS_CERT_FILE' : 'TLS_KEY_FILE';
    const set = TLS_CERT_FILE === undefined ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE';
    throw new ConfigError(
      `Invalid configuration: ${missing}=(unset) must be set with ${set}; TLS needs both the certificate and its key`,
    );
  }
  const tracing = resolveTracing(parsed.data);
  if (typeof tracing === 'string') throw new ConfigError(tracing);
  const routes = parsed.data.GATEWAY_ROUTES_FILE
    ? loadRouteFile(parsed.data.GATEWAY_ROUTES_FILE, parsed.data)
    : resolveRoutes(builtInRoutes(), parsed.data, 'built-in table');
  return { ...parsed.data, routes, tracing };
}
