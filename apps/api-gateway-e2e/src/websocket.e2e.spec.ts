import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type GatewayProcess,
  rawExchange,
  startGateway,
  startStubUpstream,
  type StubUpstream,
} from '@helix/shared-testing';
import WebSocket from 'ws';

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) =>
      reject(new Error(`refused with ${res.statusCode}`)),
    );
  });
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) =>
    ws.once('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary })),
  );
}

describe('WebSocket upgrades', () => {
  let stub: StubUpstream;
  let gateway: GatewayProcess;

  beforeAll(async () => {
    stub = await startStubUpstream({ name: 'vera' });
    const dir = mkdtempSync(join(tmpdir(), 'helix-ws-'));
    const routes = join(dir, 'routes.yaml');
    writeFileSync(
      routes,
      [
        'routes:',
        '  - prefix: /api/vera',
        '    service: vera',
        `    targets: [${stub.url}]`,
        '  - prefix: /api/plain',
        '    service: plain',
        `    targets: [${stub.url}]`,
        '    websocket: false',
        '  - prefix: /api/stripped',
        '    service: stripped',
        `    targets: [${stub.url}]`,
        '    stripPrefix: true',
      ].join('\n'),
    );
    gateway = await startGateway({ GATEWAY_ROUTES_FILE: routes });
  });

  afterAll(async () => {
    await gateway?.stop();
    await stub?.close();
  });

  it('proxies a WebSocket echo, text and binary', async () => {
    const ws = await open(`${gateway.url.replace('http', 'ws')}/api/vera/socket?room=1`);
    ws.send('hello through the gateway');
    expect(await nextMessage(ws)).toEqual({
      data: Buffer.from('hello through the gateway'),
      isBinary: false,
    });
    ws.send(Buffer.from([0, 1, 2, 255]));
    expect(await nextMessage(ws)).toEqual({ data: Buffer.from([0, 1, 2, 255]), isBinary: true });
    ws.close();
    const upgrade = stub.upgrades.find((u) => u.url === '/api/vera/socket?room=1');
    expect(upgrade?.headers).toMatchObject({
      via: '1.1 helix-gateway',
      'x-forwarded-for': '127.0.0.1',
      upgrade: 'websocket',
    });
  });

  it('refuses an upgrade on a path no route takes (http-proxy-middleware#204)', async () => {
    await expect(open(`${gateway.url.replace('http', 'ws')}/elsewhere`)).rejects.toThrow(
      'refused with 404',
    );
    await expect(open(`${gateway.url.replace('http', 'ws')}/api/veraX`)).rejects.toThrow(
      'refused with 404',
    );
    expect(stub.upgrades.some((u) => u.url !== '/api/vera/socket?room=1')).toBe(false);
  });

  it('refuses an upgrade on a route without websocket', async () => {
    await expect(open(`${gateway.url.replace('http', 'ws')}/api/plain/socket`)).rejects.toThrow(
      'refused with 400',
    );
  });

  it('refuses an h2c upgrade (attack: h2c smuggling)', async () => {
    const reply = await rawExchange(
      gateway.port,
      'GET /api/vera/x HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n',
    );
    expect(reply).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(stub.requests.some((r) => r.headers.upgrade === 'h2c')).toBe(false);
  });

  it('strips the prefix of a route that asks for it, for upgrades and requests', async () => {
    const ws = await open(`${gateway.url.replace('http', 'ws')}/api/stripped/chat`);
    ws.close();
    expect(stub.upgrades.some((u) => u.url === '/chat')).toBe(true);
  });
});
