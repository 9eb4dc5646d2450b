import type { AddressInfo } from 'node:net';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { loadGatewayConfig } from '@helix/gateway-config';
import { createRootLogger } from '@helix/gateway-observability';
import { attachGateway, GatewayHttpAdapter } from '@helix/gateway-server';
import { httpRequest, startStubUpstream, type StubUpstream } from '@helix/shared-testing';
import { AppModule } from './app.module';

describe('AppModule', () => {
  let stub: StubUpstream;
  let app: NestExpressApplication;
  let base: string;

  beforeAll(async () => {
    stub = await startStubUpstream({ name: 'auth' });
    const config = loadGatewayConfig({ AUTH_SERVICE_URL: stub.url, LOG_LEVEL: 'silent' });
    app = await NestFactory.create<NestExpressApplication>(
      AppModule.register(config, createRootLogger(config)),
      new GatewayHttpAdapter(config),
      { bodyParser: false, logger: false },
    );
    attachGateway(app);
    await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await app?.close();
    await stub?.close();
  });

  it('composes the libs: the gateway endpoints answer from Nest', async () => {
    const res = await httpRequest(`${base}/heartbeat`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('composes the libs: proxied prefixes stream to their upstream ahead of Express', async () => {
    const res = await httpRequest(`${base}/api/auth/login?next=%2F`, {
      method: 'POST',
      body: 'secret',
    });
    expect(res.json()).toMatchObject({
      service: 'auth',
      method: 'POST',
      url: '/api/auth/login?next=%2F',
      bodySize: 6,
    });
    expect(res.headers['x-powered-by']).toBeUndefined();
  });

  it('runs on Node 24', () => {
    expect(process.version).toMatch(/^v24\./);
  });
});
