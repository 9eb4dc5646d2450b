import { isIP } from 'node:net';
import { z } from 'zod';
import { integer } from './env-rules';
import { tracingEnv } from './tracing.schema';

export const DEFAULT_SERVICE_PORT = 3000;
export const DEFAULT_HOST = '0.0.0.0';
export const DEFAULT_CORS_ORIGIN = '*';
export const DEFAULT_PROXY_TIMEOUT_MS = 30_000;
export const DEFAULT_RATE_LIMIT_MAX = 1000;
export const DEFAULT_RATE_LIMIT_WINDOW_MS = 60_000;
export const DEFAULT_LOG_LEVEL = 'info';
export const DEFAULT_METRICS_PORT = 9464;
export const DEFAULT_SHUTDOWN_DELAY_MS = 0;
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000;
export const DEFAULT_HEALTH_CHECK_INTERVAL_MS = 10_000;
export const DEFAULT_HEALTH_CHECK_TIMEOUT_MS = 2_000;
export const DEFAULT_CORS_EXPOSED_HEADERS =
  'X-Request-Id,RateLimit-Limit,RateLimit-Remaining,RateLimit-Reset,Retry-After';
export const DEFAULT_CORS_MAX_AGE_S = 600;
/** Helmet's own default: 365 days. */
export const DEFAULT_HSTS_MAX_AGE_S = 31_536_000;
export const DEFAULT_COMPRESSION_THRESHOLD_BYTES = 1024;
export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;
export const DEFAULT_MAX_HEADERS_COUNT = 100;
export const DEFAULT_HEADERS_TIMEOUT_MS = 20_000;
/** 0 = no limit on a whole request, as Envoy's `request_timeout`: bodies are guarded by how they move. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 0;
/** nginx's `client_body_timeout` is 60 s; half of it, as the body guard counts only the client's share. */
export const DEFAULT_BODY_IDLE_TIMEOUT_MS = 30_000;
/** Apache `mod_reqtimeout`'s default `body=20,MinRate=500`. */
export const DEFAULT_BODY_MIN_RATE_BYTES_PER_S = 500;
export const DEFAULT_BODY_MIN_RATE_GRACE_MS = 20_000;
/** Longer than a load balancer's idle timeout (60 s on most), so the gateway never closes first. */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** Streams per HTTP/2 connection, as Envoy's edge guide sets it. */
export const DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS = 100;
/** Shorter than the 5 s of Node.js upstreams, so a pooled socket is never reused as it closes. */
export const DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS = 4_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** 0 = no idle limit on response bodies. */
export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 0;
export const DEFAULT_HEALTHY_THRESHOLD = 2;
export const DEFAULT_UNHEALTHY_THRESHOLD = 2;
export const DEFAULT_OUTLIER_CONSECUTIVE_FAILURES = 5;
export const DEFAULT_OUTLIER_EJECTION_MS = 10_000;
export const DEFAULT_RETRY_BUDGET_PERCENT = 20;
/** Envoy's circuit-breaker default `max_requests`. */
export const DEFAULT_UPSTREAM_MAX_IN_FLIGHT = 1024;
/** 0 = overload shedding off. */
export const DEFAULT_OVERLOAD_MAX_EVENT_LOOP_DELAY_MS = 0;

/** The seven platform services, their public prefix and their default upstream. */
export const KNOWN_SERVICES = {
  auth: { prefix: '/api/auth', env: 'AUTH_SERVICE_URL', url: 'http://auth-service:3001' },
  tenant: { prefix: '/api/tenants', env: 'TENANT_SERVICE_URL', url: 'http://tenant-service:3002' },
  admin: { prefix: '/api/users', env: 'ADMIN_SERVICE_URL', url: 'http://admin-service:3003' },
  file: { prefix: '/api/files', env: 'FILE_SERVICE_URL', url: 'http://file-service:3004' },
  kira: { prefix: '/api/kira', env: 'KIRA_SERVICE_URL', url: 'http://kira-service:3010' },
  vera: { prefix: '/api/vera', env: 'VERA_SERVICE_URL', url: 'http://vera-service:3011' },
  cleverscreen: {
    prefix: '/api/cleverscreen',
    env: 'CLEVERSCREEN_SERVICE_URL',
    url: 'http://cleverscreen-service:3012',
  },
} as const;

export type KnownService = keyof typeof KNOWN_SERVICES;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const LOG_FORMATS = ['json', 'pretty'] as const;
export const DEFAULT_LOG_REDACT_QUERY_KEYS =
  'token,access_token,refresh_token,id_token,api_key,apikey,key,password,secret,signature,sig,code';

const boolean = (fallback: boolean) =>
  z
    .string()
    .trim()
    .default(String(fallback))
    .transform((value, ctx) => {
      if (value === 'true') return true;
      if (value === 'false') return false;
      ctx.addIssue({ code: 'custom', message: 'must be true or false' });
      return z.NEVER;
    });

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** A comma-separated list of HTTP tokens (methods, header names); empty means unset. */
const tokenList = (fallback: string, what: string) =>
  z
    .string()
    .trim()
    .default(fallback)
    .transform((value, ctx): string[] | undefined => {
      if (value === '') return undefined;
      const tokens = value.split(',').map((t) => t.trim());
      const bad = tokens.find((t) => !TOKEN.test(t));
      if (bad !== undefined) {
        ctx.addIssue({ code: 'custom', message: `"${bad}" is not ${what}` });
        return z.NEVER;
      }
      return tokens;
    });

/** Parses one upstream URL: http or https, with a host, and nothing a proxy cannot honour. */
export function parseUpstreamUrl(raw: string): URL | string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an absolute http:// or https:// URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return 'must use http:// or https://';
  }
  if (url.username || url.password) return 'must not carry credentials';
  if (url.search || url.hash) return 'must not have a query or fragment';
  return url;
}

const upstreamList = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((value, ctx) => {
      const urls: URL[] = [];
      for (const part of value.split(',')) {
        const parsed = parseUpstreamUrl(part.trim());
        if (typeof parsed === 'string') {
          ctx.addIssue({ code: 'custom', message: `"${part.trim()}" ${parsed}` });
          return z.NEVER;
        }
        urls.push(parsed);
      }
      return urls;
    });

function parseOrigin(raw: string): string | undefined {
  try {
    const url = new URL(raw);
    // An origin is scheme://host[:port] and nothing more: a path, query or credential is a typo.
    if (url.origin === 'null' || raw.replace(/\/$/, '') !== url.origin) return undefined;
    return url.origin;
  } catch {
    return undefined;
  }
}

const corsOrigin = z
  .string()
  .trim()
  .default(DEFAULT_CORS_ORIGIN)
  .transform((value, ctx): '*' | string[] => {
    if (value === '*') return '*';
    const origins: string[] = [];
    for (const part of value.split(',')) {
      const origin = parseOrigin(part.trim());
      if (!origin) {
        ctx.addIssue({
          code: 'custom',
          message: `"${part.trim()}" is not an origin: use * or a comma-separated list of scheme://host[:port]`,
        });
        return z.NEVER;
      }
      origins.push(origin);
    }
    return origins;
  });

const CIDR = /^(.+)\/(\d{1,3})$/;
const TRUST_PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function isTrustedAddressSpec(spec: string): boolean {
  if (TRUST_PROXY_NAMES.has(spec) || isIP(spec)) return true;
  const cidr = CIDR.exec(spec);
  if (!cidr) return false;
  const family = isIP(cidr[1]);
  const bits = Number(cidr[2]);
  return family !== 0 && bits <= (family === 4 ? 32 : 128);
}

/** Express `trust proxy` values: false, true, a hop count, or a list of addresses and CIDRs. */
export type TrustProxy = boolean | number | string[];

const trustProxy = z
  .string()
  .trim()
  .default('false')
  .transform((value, ctx): TrustProxy => {
    if (value === 'false') return false;
    if (value === 'true') return true;
    if (/^\d+$/.test(value)) return Number(value);
    const specs = value.split(',').map((s) => s.trim());
    const bad = specs.find((spec) => !isTrustedAddressSpec(spec));
    if (bad !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `"${bad}" is not false, true, a hop count, an IP address, a CIDR or one of loopback, linklocal, uniquelocal`,
      });
      return z.NEVER;
    }
    return specs;
  });

const workers = z
  .string()
  .trim()
  .default('1')
  .transform((value, ctx): number | 'auto' => {
    if (value === 'auto') return 'auto';
    if (/^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 256) return Number(value);
    ctx.addIssue({ code: 'custom', message: 'must be auto or a whole number from 1 to 256' });
    return z.NEVER;
  });

const redisUrl = z
  .string()
  .trim()
  .optional()
  .transform((value, ctx) => {
    if (!value) return undefined;
    try {
      const url = new URL(value);
      if (url.protocol === 'redis:' || url.protocol === 'rediss:') return url.href;
    } catch {
      // reported below
    }
    ctx.addIssue({ code: 'custom', message: 'must be a redis:// or rediss:// URL' });
    return z.NEVER;
  });

/** `host:port,…`: the Redis Sentinels to ask for the current primary. */
const redisSentinels = z
  .string()
  .trim()
  .optional()
  .transform((value, ctx) => {
    if (!value) return undefined;
    const sentinels: { host: string; port: number }[] = [];
    for (const entry of value.split(',').map((e) => e.trim())) {
      const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(entry);
      const port = Number(match?.[3]);
      if (!match || port < 1 || port > 65535) {
        ctx.addIssue({
          code: 'custom',
          message: `must list sentinels as host:port, not "${entry}"`,
        });
        return z.NEVER;
      }
      sentinels.push({ host: match[1] ?? match[2], port });
    }
    return sentinels;
  });

const serviceUrls = Object.fromEntries(
  Object.values(KNOWN_SERVICES).map((s) => [s.env, upstreamList(s.url)]),
) as { [K in (typeof KNOWN_SERVICES)[KnownService]['env']]: ReturnType<typeof upstreamList> };

/**
 * The gateway's environment: one schema, the one source of both validation and the type.
 * Every key is an environment variable; CONTRACT.md "Environment" lists their meaning.
 */
export const DISCOVERY_MODES = ['static', 'dns'] as const;
export type DiscoveryMode = (typeof DISCOVERY_MODES)[number];
export const DEFAULT_DNS_REFRESH_MS = 5000;
/** Addresses per service at most, as HAProxy's server-template takes a count. */
export const DEFAULT_DNS_MAX_ADDRESSES = 64;

/** `ip` or `ip:port` (IPv6 as `[ip]:port`), as dns.Resolver#setServers takes them. */
function isResolverAddress(entry: string): boolean {
  if (isIP(entry)) return true;
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(entry);
  if (!match) return false;
  const port = Number(match[3]);
  return isIP(match[1] ?? match[2]) !== 0 && port >= 1 && port <= 65535;
}

const dnsServers = z
  .string()
  .trim()
  .optional()
  .transform((value, ctx) => {
    if (!value) return undefined;
    const entries = value.split(',').map((entry) => entry.trim());
    const bad = entries.find((entry) => !isResolverAddress(entry));
    if (bad !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `must list resolvers as ip or ip:port, not "${bad}"`,
      });
      return z.NEVER;
    }
    return entries;
  });

/** A file path, unset when empty. */
const optionalPath = z
  .string()
  .trim()
  .optional()
  .transform((v) => v || undefined);

export const envSchema = z.object({
  SERVICE_PORT: integer(0, 65535, DEFAULT_SERVICE_PORT),
  HOST: z.string().trim().min(1, 'must not be empty').default(DEFAULT_HOST),
  CORS_ORIGIN: corsOrigin,
  CORS_ALLOWED_METHODS: tokenList('', 'an HTTP method'),
  CORS_ALLOWED_HEADERS: tokenList('', 'a header name'),
  CORS_EXPOSED_HEADERS: tokenList(DEFAULT_CORS_EXPOSED_HEADERS, 'a header name'),
  CORS_CREDENTIALS: boolean(false),
  CORS_MAX_AGE_S: integer(0, 86_400, DEFAULT_CORS_MAX_AGE_S),
  HSTS_MAX_AGE_S: integer(0, 63_072_000, DEFAULT_HSTS_MAX_AGE_S),
  COMPRESSION: boolean(true),
  COMPRESSION_THRESHOLD_BYTES: integer(0, 1_073_741_824, DEFAULT_COMPRESSION_THRESHOLD_BYTES),
  ...serviceUrls,
  PROXY_TIMEOUT_MS: integer(1, 3_600_000, DEFAULT_PROXY_TIMEOUT_MS),
  RATE_LIMIT_MAX: integer(0, 1_000_000_000, DEFAULT_RATE_LIMIT_MAX),
  RATE_LIMIT_WINDOW_MS: integer(1, 86_400_000, DEFAULT_RATE_LIMIT_WINDOW_MS),
  REDIS_URL: redisUrl,
  REDIS_SENTINELS: redisSentinels,
  REDIS_SENTINEL_NAME: z
    .string()
    .trim()
    .optional()
    .transform((v) => v || undefined),
  REDIS_PASSWORD: z
    .string()
    .optional()
    .transform((v) => v || undefined),
  TRUST_PROXY: trustProxy,
  GATEWAY_ROUTES_FILE: optionalPath,
  TLS_CERT_FILE: optionalPath,
  TLS_KEY_FILE: optionalPath,
  HTTP2_MAX_CONCURRENT_STREAMS: integer(1, 10_000, DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS),
  UPSTREAM_DISCOVERY: z
    .enum(DISCOVERY_MODES, { message: `must be one of ${DISCOVERY_MODES.join(', ')}` })
    .default('static'),
  DNS_REFRESH_MS: integer(100, 3_600_000, DEFAULT_DNS_REFRESH_MS),
  DNS_SERVERS: dnsServers,
  DNS_MAX_ADDRESSES: integer(1, 1024, DEFAULT_DNS_MAX_ADDRESSES),
  LOG_LEVEL: z
    .enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(', ')}` })
    .default(DEFAULT_LOG_LEVEL),
  LOG_FORMAT: z
    .enum(LOG_FORMATS, { message: `must be one of ${LOG_FORMATS.join(', ')}` })
    .default('json'),
  ACCESS_LOG: boolean(true),
  LOG_REDACT_QUERY_KEYS: z
    .string()
    .trim()
    .default(DEFAULT_LOG_REDACT_QUERY_KEYS)
    .transform((value) =>
      value
        .split(',')
        .map((key) => key.trim().toLowerCase())
        .filter(Boolean),
    ),
  METRICS_PORT: integer(0, 65535, DEFAULT_METRICS_PORT),
  SERVER_TIMING: boolean(true),
  GATEWAY_WORKERS: workers,
  SHUTDOWN_DELAY_MS: integer(0, 3_600_000, DEFAULT_SHUTDOWN_DELAY_MS),
  SHUTDOWN_TIMEOUT_MS: integer(0, 3_600_000, DEFAULT_SHUTDOWN_TIMEOUT_MS),
  MAX_HEADER_BYTES: integer(1024, 1_048_576, DEFAULT_MAX_HEADER_BYTES),
  MAX_HEADERS_COUNT: integer(1, 10_000, DEFAULT_MAX_HEADERS_COUNT),
  HEADERS_TIMEOUT_MS: integer(1, 3_600_000, DEFAULT_HEADERS_TIMEOUT_MS),
  REQUEST_TIMEOUT_MS: integer(0, 86_400_000, DEFAULT_REQUEST_TIMEOUT_MS),
  BODY_IDLE_TIMEOUT_MS: integer(0, 3_600_000, DEFAULT_BODY_IDLE_TIMEOUT_MS),
  BODY_MIN_RATE_BYTES_PER_S: integer(0, 1_000_000_000, DEFAULT_BODY_MIN_RATE_BYTES_PER_S),
  BODY_MIN_RATE_GRACE_MS: integer(0, 3_600_000, DEFAULT_BODY_MIN_RATE_GRACE_MS),
  KEEP_ALIVE_TIMEOUT_MS: integer(1, 3_600_000, DEFAULT_KEEP_ALIVE_TIMEOUT_MS),
  UPSTREAM_IDLE_TIMEOUT_MS: integer(1, 3_600_000, DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS),
  CONNECT_TIMEOUT_MS: integer(1, 600_000, DEFAULT_CONNECT_TIMEOUT_MS),
  STREAM_IDLE_TIMEOUT_MS: integer(0, 86_400_000, DEFAULT_STREAM_IDLE_TIMEOUT_MS),
  HEALTH_CHECK_HEALTHY_THRESHOLD: integer(1, 100, DEFAULT_HEALTHY_THRESHOLD),
  HEALTH_CHECK_UNHEALTHY_THRESHOLD: integer(1, 100, DEFAULT_UNHEALTHY_THRESHOLD),
  OUTLIER_CONSECUTIVE_FAILURES: integer(0, 1000, DEFAULT_OUTLIER_CONSECUTIVE_FAILURES),
  OUTLIER_EJECTION_MS: integer(1, 3_600_000, DEFAULT_OUTLIER_EJECTION_MS),
  RETRY_BUDGET_PERCENT: integer(0, 100, DEFAULT_RETRY_BUDGET_PERCENT),
  UPSTREAM_MAX_IN_FLIGHT: integer(1, 1_000_000, DEFAULT_UPSTREAM_MAX_IN_FLIGHT),
  OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: integer(0, 60_000, DEFAULT_OVERLOAD_MAX_EVENT_LOOP_DELAY_MS),
  HEALTH_CHECK_INTERVAL_MS: integer(100, 3_600_000, DEFAULT_HEALTH_CHECK_INTERVAL_MS),
  HEALTH_CHECK_TIMEOUT_MS: integer(1, 600_000, DEFAULT_HEALTH_CHECK_TIMEOUT_MS),
  ...tracingEnv,
});

export type GatewayEnv = z.output<typeof envSchema>;
export type LogLevel = GatewayEnv['LOG_LEVEL'];
