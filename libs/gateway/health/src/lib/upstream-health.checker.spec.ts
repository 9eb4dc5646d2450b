import { loadGatewayConfig } from '@helix/gateway-config';
import { GatewayMetrics } from '@helix/gateway-observability';
import { UpstreamRegistry } from '@helix/gateway-router';
import { startStubUpstream, type StubUpstream } from '@helix/shared-testing';
import { UpstreamHealthChecker } from './upstream-health.checker';

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('UpstreamHealthChecker', () => {
  let up: StubUpstream;
  let second: StubUpstream;
  let registry: UpstreamRegistry;
  let checker: UpstreamHealthChecker;
  let metrics: GatewayMetrics;

  beforeEach(async () => {
    up = await startStubUpstream({ name: 'auth' });
    second = await startStubUpstream({ name: 'tenant' });
    const config = loadGatewayConfig({
      AUTH_SERVICE_URL: up.url,
      // One live instance is enough for a service to be up.
      TENANT_SERVICE_URL: `http://127.0.0.1:1,${second.url}`,
      ADMIN_SERVICE_URL: 'http://127.0.0.1:1',
      HEALTH_CHECK_INTERVAL_MS: '100',
      HEALTH_CHECK_TIMEOUT_MS: '500',
    });
    registry = new UpstreamRegistry(config);
    metrics = new GatewayMetrics();
    checker = new UpstreamHealthChecker(config, registry, metrics);
  });

  afterEach(async () => {
    checker.onModuleDestroy();
    registry.onModuleDestroy();
    await up.close();
    await second.close();
  });

  it('starts unknown, then reports each service from its instances', async () => {
    expect(checker.snapshot()).toEqual({
      auth: 'unknown',
      tenant: 'unknown',
      admin: 'unknown',
      file: 'unknown',
      kira: 'unknown',
      vera: 'unknown',
      cleverscreen: 'unknown',
    });
    checker.onApplicationBootstrap();
    await until(() => !Object.values(checker.snapshot()).includes('unknown'));
    expect(checker.snapshot()).toMatchObject({
      auth: 'up',
      tenant: 'up',
      admin: 'down',
      file: 'down',
    });
    expect(up.requests.find((r) => r.url === '/health')?.headers['user-agent']).toBe(
      'helix-gateway-health-checker',
    );
  });

  it('notices a service going down in the background', async () => {
    checker.onApplicationBootstrap();
    await until(() => checker.snapshot().auth === 'up');
    await up.close();
    await until(() => checker.snapshot().auth === 'down');
  });
});
