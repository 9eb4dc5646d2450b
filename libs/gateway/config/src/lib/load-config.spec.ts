import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_PROXY_TIMEOUT_MS,
  DEFAULT_SERVICE_PORT,
  envSchema,
  KNOWN_SERVICES,
} from './env.schema';
import { ConfigError, loadGatewayConfig, readEnvironment } from './load-config';

function errorOf(env: Record<string, string>): string {
  try {
    loadGatewayConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

function routeFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'helix-routes-'));
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('loadGatewayConfig', () => {
  it('applies the contract defaults to an empty environment', () => {
    const config = loadGatewayConfig({});
    expect(config).toMatchObject({
      SERVICE_PORT: DEFAULT_SERVICE_PORT,
      HOST: '0.0.0.0',
      CORS_ORIGIN: '*',
      PROXY_TIMEOUT_MS: DEFAULT_PROXY_TIMEOUT_MS,
      RATE_LIMIT_MAX: 1000,
      RATE_LIMIT_WINDOW_MS: 60000,
      TRUST_PROXY: false,
      LOG_LEVEL: 'info',
      METRICS_PORT: 9464,
      GATEWAY_WORKERS: 1,
      SHUTDOWN_DELAY_MS: 0,
      SHUTDOWN_TIMEOUT_MS: 30000,
      REQUEST_TIMEOUT_MS: 0,
      BODY_IDLE_TIMEOUT_MS: 30000,
      BODY_MIN_RATE_BYTES_PER_S: 500,
      BODY_MIN_RATE_GRACE_MS: 20000,
      UPSTREAM_MAX_IN_FLIGHT: 1024,
      OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: 0,
    });
    expect(config.routes.map((r) => [r.prefix, r.service, r.targets.map(String)])).toEqual([
      ['/api/auth', 'auth', ['http://auth-service:3001/']],
      ['/api/tenants', 'tenant', ['http://tenant-service:3002/']],
      ['/api/users', 'admin', ['http://admin-service:3003/']],
      ['/api/files', 'file', ['http://file-service:3004/']],
      ['/api/kira', 'kira', ['http://kira-service:3010/']],
      ['/api/vera', 'vera', ['http://vera-service:3011/']],
      ['/api/cleverscreen', 'cleverscreen', ['http://cleverscreen-service:3012/']],
    ]);
    expect(config.REDIS_URL).toBeUndefined();
    expect(config.routes.every((r) => r.timeoutMs === 30000 && r.websocket && !r.stripPrefix)).toBe(
      true,
    );
  });

  it('reads every service URL, and a comma-separated list as instances', () => {
    const env = Object.fromEntries(
      Object.values(KNOWN_SERVICES).map((s, i) => [s.env, `http://127.0.0.1:${4000 + i}`]),
    );
    env.AUTH_SERVICE_URL = 'http://127.0.0.1:4000, http://127.0.0.1:4100';
    const config = loadGatewayConfig(env);
    expect(config.AUTH_SERVICE_URL.map(String)).toEqual([
      'http://127.0.0.1:4000/',
      'http://127.0.0.1:4100/',
    ]);
    expect(config.routes.find((r) => r.service === 'cleverscreen')?.targets.map(String)).toEqual([
      'http://127.0.0.1:4006/',
    ]);
  });

  it('parses lists, hop counts and CIDRs', () => {
    const config = loadGatewayConfig({
      CORS_ORIGIN: 'https://app.example.com, http://localhost:5173',
      TRUST_PROXY: '10.0.0.0/8,loopback',
      GATEWAY_WORKERS: 'auto',
      REDIS_URL: 'redis://127.0.0.1:6379',
    });
    expect(config.CORS_ORIGIN).toEqual(['https://app.example.com', 'http://localhost:5173']);
    expect(config.TRUST_PROXY).toEqual(['10.0.0.0/8', 'loopback']);
    expect(config.GATEWAY_WORKERS).toBe('auto');
    expect(loadGatewayConfig({ TRUST_PROXY: '2' }).TRUST_PROXY).toBe(2);
  });

  it.each([
    [{ SERVICE_PORT: 'abc' }, 'SERVICE_PORT="abc" must be a whole number from 0 to 65535'],
    [{ SERVICE_PORT: '70000' }, 'SERVICE_PORT="70000" must be a whole number from 0 to 65535'],
    [{ HOST: ' ' }, 'HOST=" " must not be empty'],
    [
      { AUTH_SERVICE_URL: 'not a url' },
      'AUTH_SERVICE_URL="not a url" "not a url" must be an absolute http:// or https:// URL',
    ],
    [
      { FILE_SERVICE_URL: 'ftp://files:21' },
      'FILE_SERVICE_URL="ftp://files:21" "ftp://files:21" must use http:// or https://',
    ],
    [
      { KIRA_SERVICE_URL: 'http://u:p@kira:3010' },
      'KIRA_SERVICE_URL="http://u:p@kira:3010" "http://u:p@kira:3010" must not carry credentials',
    ],
    [
      { VERA_SERVICE_URL: 'http://vera:3011/?x=1' },
      'VERA_SERVICE_URL="http://vera:3011/?x=1" "http://vera:3011/?x=1" must not have a query or fragment',
    ],
    [
      { CORS_ORIGIN: 'https://a.example.com/path' },
      'CORS_ORIGIN="https://a.example.com/path" "https://a.example.com/path" is not an origin: use * or a comma-separated list of scheme://host[:port]',
    ],
    [{ PROXY_TIMEOUT_MS: '0' }, 'PROXY_TIMEOUT_MS="0" must be a whole number from 1 to 3600000'],
    [{ RATE_LIMIT_MAX: '-1' }, 'RATE_LIMIT_MAX="-1" must be a whole number from 0 to 1000000000'],
    [
      { RATE_LIMIT_WINDOW_MS: '1.5' },
      'RATE_LIMIT_WINDOW_MS="1.5" must be a whole number from 1 to 86400000',
    ],
    [
      { REDIS_URL: 'http://redis:6379' },
      'REDIS_URL="http://redis:6379" must be a redis:// or rediss:// URL',
    ],
    [
      { TRUST_PROXY: 'yes' },
      'TRUST_PROXY="yes" "yes" is not false, true, a hop count, an IP address, a CIDR or one of loopback, linklocal, uniquelocal',
    ],
    [
      { TRUST_PROXY: '10.0.0.0/33' },
      'TRUST_PROXY="10.0.0.0/33" "10.0.0.0/33" is not false, true, a hop count, an IP address, a CIDR or one of loopback, linklocal, uniquelocal',
    ],
    [
      { LOG_LEVEL: 'verbose' },
      'LOG_LEVEL="verbose" must be one of fatal, error, warn, info, debug, trace, silent',
    ],
    [{ METRICS_PORT: 'x' }, 'METRICS_PORT="x" must be a whole number from 0 to 65535'],
    [{ GATEWAY_WORKERS: '0' }, 'GATEWAY_WORKERS="0" must be auto or a whole number from 1 to 256'],
    [
      { SHUTDOWN_DELAY_MS: 'soon' },
      'SHUTDOWN_DELAY_MS="soon" must be a whole number from 0 to 3600000',
    ],
    [
      { SHUTDOWN_TIMEOUT_MS: '' },
      'SHUTDOWN_TIMEOUT_MS="" must be a whole number from 0 to 3600000',
    ],
    [
      { HEALTH_CHECK_INTERVAL_MS: '5' },
      'HEALTH_CHECK_INTERVAL_MS="5" must be a whole number from 100 to 3600000',
    ],
    [
      { CORS_ALLOWED_METHODS: 'GET,PO ST' },
      'CORS_ALLOWED_METHODS="GET,PO ST" "PO ST" is not an HTTP method',
    ],
    [
      { CORS_EXPOSED_HEADERS: 'X-Ok,X:Bad' },
      'CORS_EXPOSED_HEADERS="X-Ok,X:Bad" "X:Bad" is not a header name',
    ],
    [{ CORS_CREDENTIALS: 'yes' }, 'CORS_CREDENTIALS="yes" must be true or false'],
    [{ CORS_MAX_AGE_S: '99999' }, 'CORS_MAX_AGE_S="99999" must be a whole number from 0 to 86400'],
    [{ HSTS_MAX_AGE_S: '-1' }, 'HSTS_MAX_AGE_S="-1" must be a whole number from 0 to 63072000'],
    [{ COMPRESSION: 'on' }, 'COMPRESSION="on" must be true or false'],
    [
      { COMPRESSION_THRESHOLD_BYTES: '1k' },
      'COMPRESSION_THRESHOLD_BYTES="1k" must be a whole number from 0 to 1073741824',
    ],
    [
      { CORS_CREDENTIALS: 'true' },
      'CORS_CREDENTIALS="true" needs CORS_ORIGIN to list origins; credentials are never allowed with *',
    ],
    [
      { MAX_HEADER_BYTES: '100' },
      'MAX_HEADER_BYTES="100" must be a whole number from 1024 to 1048576',
    ],
    [{ MAX_HEADERS_COUNT: '0' }, 'MAX_HEADERS_COUNT="0" must be a whole number from 1 to 10000'],
    [
      { HEADERS_TIMEOUT_MS: 'x' },
      'HEADERS_TIMEOUT_MS="x" must be a whole number from 1 to 3600000',
    ],
    [
      { REQUEST_TIMEOUT_MS: 'x' },
      'REQUEST_TIMEOUT_MS="x" must be a whole number from 0 to 86400000',
    ],
    [
      { HEADERS_TIMEOUT_MS: '5000', REQUEST_TIMEOUT_MS: '1000' },
      'HEADERS_TIMEOUT_MS="5000" must not exceed REQUEST_TIMEOUT_MS="1000"',
    ],
    [
      { BODY_IDLE_TIMEOUT_MS: '-1' },
      'BODY_IDLE_TIMEOUT_MS="-1" must be a whole number from 0 to 3600000',
    ],
    [
      { BODY_MIN_RATE_BYTES_PER_S: '1.5' },
      'BODY_MIN_RATE_BYTES_PER_S="1.5" must be a whole number from 0 to 1000000000',
    ],
    [
      { BODY_MIN_RATE_GRACE_MS: 'soon' },
      'BODY_MIN_RATE_GRACE_MS="soon" must be a whole number from 0 to 3600000',
    ],
    [
      { KEEP_ALIVE_TIMEOUT_MS: '0' },
      'KEEP_ALIVE_TIMEOUT_MS="0" must be a whole number from 1 to 3600000',
    ],
    [
      { UPSTREAM_IDLE_TIMEOUT_MS: '0' },
      'UPSTREAM_IDLE_TIMEOUT_MS="0" must be a whole number from 1 to 3600000',
    ],
    [{ CONNECT_TIMEOUT_MS: '0' }, 'CONNECT_TIMEOUT_MS="0" must be a whole number from 1 to 600000'],
    [
      { OUTLIER_CONSECUTIVE_FAILURES: 'many' },
      'OUTLIER_CONSECUTIVE_FAILURES="many" must be a whole number from 0 to 1000',
    ],
    [
      { UPSTREAM_MAX_IN_FLIGHT: '0' },
      'UPSTREAM_MAX_IN_FLIGHT="0" must be a whole number from 1 to 1000000',
    ],
    [
      { OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: 'high' },
      'OVERLOAD_MAX_EVENT_LOOP_DELAY_MS="high" must be a whole number from 0 to 60000',
    ],
    [
      { RETRY_BUDGET_PERCENT: '101' },
      'RETRY_BUDGET_PERCENT="101" must be a whole number from 0 to 100',
    ],
    [
      { HEALTH_CHECK_TIMEOUT_MS: 'x' },
      'HEALTH_CHECK_TIMEOUT_MS="x" must be a whole number from 1 to 600000',
    ],
    [
      { TLS_CERT_FILE: '/etc/tls/tls.crt' },
      'TLS_KEY_FILE=(unset) must be set with TLS_CERT_FILE; TLS needs both the certificate and its key',
    ],
    [
      { TLS_KEY_FILE: '/etc/tls/tls.key' },
      'TLS_CERT_FILE=(unset) must be set with TLS_KEY_FILE; TLS needs both the certificate and its key',
    ],
    [
      { REDIS_SENTINELS: '127.0.0.1:26379,sentinel-b' },
      'REDIS_SENTINELS="127.0.0.1:26379,sentinel-b" must list sentinels as host:port, not "sentinel-b"',
    ],
    [{ UPSTREAM_DISCOVERY: 'srv' }, 'UPSTREAM_DISCOVERY="srv" must be one of static, dns'],
    [
      { DNS_SERVERS: '127.0.0.1:53,dns.example' },
      'DNS_SERVERS="127.0.0.1:53,dns.example" must list resolvers as ip or ip:port, not "dns.example"',
    ],
    [
      { HTTP2_MAX_CONCURRENT_STREAMS: '0' },
      'HTTP2_MAX_CONCURRENT_STREAMS="0" must be a whole number from 1 to 10000',
    ],
    [
      { REDIS_SENTINELS: '127.0.0.1:26379' },
      'REDIS_SENTINEL_NAME=(unset) must name the primary the Sentinels monitor (their `sentinel monitor <name>`)',
    ],
    [
      { REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_NAME: 'm', REDIS_URL: 'redis://r:6379' },
      'REDIS_SENTINELS and REDIS_URL are both set; set one: a Redis by URL, or the Sentinels that name the primary',
    ],
  ])('rejects %j with one line naming the variable', (env, message) => {
    expect(errorOf(env)).toBe(`Invalid configuration: ${message}`);
  });
});

describe('GATEWAY_ROUTES_FILE', () => {
  it('replaces the built-in table from YAML, with env targets for known services', () => {
    const file = routeFile(
      'routes.yaml',
      [
        'routes:',
        '  - prefix: /api/auth',
        '    service: auth',
        '    timeoutMs: 500',
        '  - prefix: /api/reports/v2',
        '    service: reports',
        '    targets: [http://127.0.0.1:7000, http://127.0.0.1:7001]',
        '    stripPrefix: true',
        '    websocket: false',
        '    rateLimit: { max: 5, windowMs: 1000 }',
        '    connectTimeoutMs: 250',
        '    idleTimeoutMs: 60000',
        '    balance: least-in-flight',
        '    retry: false',
        '    maxInFlight: 64',
        '    discovery: dns',
      ].join('\n'),
    );
    const config = loadGatewayConfig({
      GATEWAY_ROUTES_FILE: file,
      AUTH_SERVICE_URL: 'http://127.0.0.1:6000',
    });
    expect(config.routes.map((r) => ({ ...r, targets: r.targets.map(String) }))).toEqual([
      {
        prefix: '/api/auth',
        service: 'auth',
        targets: ['http://127.0.0.1:6000/'],
        stripPrefix: false,
        timeoutMs: 500,
        connectTimeoutMs: 5000,
        idleTimeoutMs: 0,
        balance: 'round-robin',
        discovery: 'static',
        maxInFlight: 1024,
        retry: true,
        websocket: true,
      },
      {
        prefix: '/api/reports/v2',
        service: 'reports',
        targets: ['http://127.0.0.1:7000/', 'http://127.0.0.1:7001/'],
        stripPrefix: true,
        timeoutMs: 30000,
        connectTimeoutMs: 250,
        idleTimeoutMs: 60000,
        balance: 'least-in-flight',
        discovery: 'dns',
        maxInFlight: 64,
        retry: false,
        websocket: false,
        rateLimit: { max: 5, windowMs: 1000 },
      },
    ]);
  });

  it('reads JSON by its extension', () => {
    const file = routeFile(
      'routes.json',
      JSON.stringify({ routes: [{ prefix: '/a', service: 'auth' }] }),
    );
    expect(loadGatewayConfig({ GATEWAY_ROUTES_FILE: file }).routes).toHaveLength(1);
  });

  const cases: [string, unknown, string][] = [
    [
      'an unknown key',
      { routes: [{ prefix: '/a', service: 'auth', retries: 3 }] },
      'routes[0] (prefix /a): unknown key "retries"',
    ],
    [
      'a prefix without a leading slash',
      { routes: [{ prefix: 'api', service: 'auth' }] },
      'routes[0] (prefix api) key "prefix": must start with / and hold only non-empty segments of letters, digits and . _ ~ -, without a trailing /',
    ],
    [
      'a dot segment in a prefix',
      { routes: [{ prefix: '/api/../x', service: 'auth' }] },
      'routes[0] (prefix /api/../x) key "prefix": must start with / and hold only non-empty segments of letters, digits and . _ ~ -, without a trailing /',
    ],
    [
      'a reserved prefix',
      { routes: [{ prefix: '/health/x', service: 'auth' }] },
      'routes[0] (prefix /health/x) key "prefix": must not claim /heartbeat, /health, /info, which the gateway answers itself',
    ],
    [
      'a bad target',
      { routes: [{ prefix: '/a', service: 'x', targets: ['nope'] }] },
      'routes[0] (prefix /a) key "targets": "nope" must be an absolute http:// or https:// URL',
    ],
    [
      'a bad timeout',
      { routes: [{ prefix: '/a', service: 'auth', timeoutMs: -5 }] },
      'routes[0] (prefix /a) key "timeoutMs": must be at least 1',
    ],
    [
      'a bad boolean',
      { routes: [{ prefix: '/a', service: 'auth', stripPrefix: 'yes' }] },
      'routes[0] (prefix /a) key "stripPrefix": must be true or false',
    ],
    [
      'an unknown balancing policy',
      { routes: [{ prefix: '/a', service: 'auth', balance: 'random' }] },
      'routes[0] (prefix /a) key "balance": must be round-robin or least-in-flight',
    ],
    [
      'a concurrency cap of zero',
      { routes: [{ prefix: '/a', service: 'auth', maxInFlight: 0 }] },
      'routes[0] (prefix /a) key "maxInFlight": must be at least 1',
    ],
    [
      'a negative body limit',
      { routes: [{ prefix: '/a', service: 'auth', maxBodyBytes: -1 }] },
      'routes[0] (prefix /a) key "maxBodyBytes": must be at least 0',
    ],
    [
      'a rate limit without its window',
      { routes: [{ prefix: '/a', service: 'auth', rateLimit: { max: 5 } }] },
      'routes[0] (prefix /a) key "rateLimit": windowMs must be a number of milliseconds',
    ],
    ['no routes', { routes: [] }, 'routes: must hold at least one route'],
    ['a missing list', { paths: [] }, 'routes: must be a list of routes'],
  ];

  it.each(cases)('rejects %s naming the route and the key', (_name, document, detail) => {
    const file = routeFile('routes.json', JSON.stringify(document));
    const message = errorOf({ GATEWAY_ROUTES_FILE: file });
    expect(message).toBe(`Invalid configuration: GATEWAY_ROUTES_FILE=${file} ${detail}`);
  });

  it('rejects an unknown service without targets', () => {
    const file = routeFile(
      'r.json',
      JSON.stringify({ routes: [{ prefix: '/r', service: 'reports' }] }),
    );
    expect(errorOf({ GATEWAY_ROUTES_FILE: file })).toBe(
      `Invalid configuration: GATEWAY_ROUTES_FILE=${file} routes[0] (prefix /r) key "targets": is required for service "reports", which is not one of auth, tenant, admin, file, kira, vera, cleverscreen`,
    );
  });

  it('rejects a prefix listed twice', () => {
    const route = { prefix: '/r', service: 'auth' };
    const file = routeFile('r.json', JSON.stringify({ routes: [route, route] }));
    expect(errorOf({ GATEWAY_ROUTES_FILE: file })).toBe(
      `Invalid configuration: GATEWAY_ROUTES_FILE=${file} routes[1] (prefix /r): prefix is listed twice`,
    );
  });

  it('rejects a file that cannot be read or parsed', () => {
    expect(errorOf({ GATEWAY_ROUTES_FILE: '/nonexistent/routes.yaml' })).toBe(
      'Invalid configuration: GATEWAY_ROUTES_FILE=/nonexistent/routes.yaml cannot be read (ENOENT)',
    );
    const file = routeFile('r.json', '{ routes: ');
    expect(errorOf({ GATEWAY_ROUTES_FILE: file })).toMatch(
      new RegExp(`^Invalid configuration: GATEWAY_ROUTES_FILE=${file} is not valid JSON: `),
    );
  });
});

describe('readEnvironment', () => {
  it('reads .env underneath the real environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'helix-env-'));
    writeFileSync(join(dir, '.env'), 'SERVICE_PORT=4000\nHOST=127.0.0.1\n');
    expect(readEnvironment(dir, { SERVICE_PORT: '5000' })).toEqual({
      SERVICE_PORT: '5000',
      HOST: '127.0.0.1',
    });
  });

  it('returns the environment as it is without a .env file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'helix-env-'));
    const env = { A: '1' };
    expect(readEnvironment(dir, env)).toBe(env);
  });
});

describe('.env.example', () => {
  // readEnvironment reads `.env`: give it a folder whose .env is the example.
  const dir = mkdtempSync(join(tmpdir(), 'helix-example-'));
  copyFileSync(join(__dirname, '../../../../../.env.example'), join(dir, '.env'));
  const example = readEnvironment(dir, {});

  it('documents every variable of the schema', () => {
    expect(Object.keys(example).sort()).toEqual(Object.keys(envSchema.shape).sort());
  });

  it('holds exactly the defaults', () => {
    expect(loadGatewayConfig(example)).toEqual(loadGatewayConfig({}));
  });
});
