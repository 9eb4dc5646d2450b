import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  httpRequest,
  runGatewayToExit,
  startGateway,
  startStubUpstream,
} from '@helix/shared-testing';

describe('configuration at start-up', () => {
  it.each([
    [
      { SERVICE_PORT: 'abc' },
      'Invalid configuration: SERVICE_PORT="abc" must be a whole number from 0 to 65535',
    ],
    [
      { AUTH_SERVICE_URL: 'auth-service:3001' },
      'Invalid configuration: AUTH_SERVICE_URL="auth-service:3001" "auth-service:3001" must use http:// or https://',
    ],
    [
      { LOG_LEVEL: 'loud' },
      'Invalid configuration: LOG_LEVEL="loud" must be one of fatal, error, warn, info, debug, trace, silent',
    ],
  ])('exits 1 with one line naming the variable for %j', async (env, line) => {
    const { code, output } = await runGatewayToExit(env);
    expect(code).toBe(1);
    expect(output).toBe(`${line}\n`);
  });

  it('exits 1 naming the route and the key of a bad route file', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'helix-cfg-')), 'routes.yaml');
    writeFileSync(file, 'routes:\n  - prefix: /api/x\n    service: auth\n    retries: 3\n');
    const { code, output } = await runGatewayToExit({ GATEWAY_ROUTES_FILE: file });
    expect(code).toBe(1);
    expect(output).toBe(
      `Invalid configuration: GATEWAY_ROUTES_FILE=${file} routes[0] (prefix /api/x): unknown key "retries"\n`,
    );
  });

  it('routes by a route file: a nested prefix, and stripPrefix', async () => {
    const stub = await startStubUpstream({ name: 'reports' });
    const file = join(mkdtempSync(join(tmpdir(), 'helix-cfg-')), 'routes.json');
    writeFileSync(
      file,
      JSON.stringify({
        routes: [
          { prefix: '/api/reports', service: 'reports', targets: [stub.url] },
          { prefix: '/api/reports/v2', service: 'reports', targets: [stub.url], stripPrefix: true },
        ],
      }),
    );
    const gateway = await startGateway({ GATEWAY_ROUTES_FILE: file });
    try {
      expect((await httpRequest(`${gateway.url}/api/reports/a?x=1`)).json()).toMatchObject({
        url: '/api/reports/a?x=1',
      });
      expect((await httpRequest(`${gateway.url}/api/reports/v2/b?y=2`)).json()).toMatchObject({
        url: '/b?y=2',
      });
      expect((await httpRequest(`${gateway.url}/api/reports/v2?y=2`)).json()).toMatchObject({
        url: '/?y=2',
      });
      expect((await httpRequest(`${gateway.url}/api/auth/x`)).status).toBe(404);
    } finally {
      await gateway.stop();
      await stub.close();
    }
  });
});
