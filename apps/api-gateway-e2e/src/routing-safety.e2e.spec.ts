import { KNOWN_SERVICES } from '@helix/gateway-config';
import { rawExchange, startStubUpstream, type StubUpstream } from '@helix/shared-testing';
import { type ServiceName, usePlatform } from './support';

interface RawReply {
  status: number;
  body: string;
}

function parseReply(text: string): RawReply {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  return { status, body: text.slice(text.indexOf('\r\n\r\n') + 4) };
}

function get(
  port: number,
  target: string,
  headers = 'Host: gateway.example\r\n',
): Promise<RawReply> {
  return rawExchange(port, `GET ${target} HTTP/1.1\r\n${headers}Connection: close\r\n\r\n`).then(
    parseReply,
  );
}

// Paths that try to reach another service, or a path outside a prefix, once an upstream or a
// second proxy decodes or normalises them.
const HOSTILE_PATHS = [
  '/api/auth/../users/admin',
  '/api/auth/./../users/admin',
  '/api/auth/x/../../users/admin',
  '/api/auth/../../../../api/users/admin',
  '/api/auth/%2e%2e/users/admin',
  '/api/auth/%2E%2E/users/admin',
  '/api/auth/.%2e/users/admin',
  '/api/auth/%2e./users/admin',
  '/api/auth/..%2fusers/admin',
  '/api/auth/..%2Fusers/admin',
  '/api/auth/%2e%2e%2fusers%2fadmin',
  '/api/auth%2f..%2fusers/admin',
  '/api%2fauth/x',
  '/api/auth/..%5cusers/admin',
  '/api/auth/..%5Cusers/admin',
  '/api/auth/..\\users/admin',
  '/api/auth\\..\\users/admin',
  '/api/auth/..;/users/admin',
  '/api/auth/.;/users/admin',
  '/api/auth/..;jsessionid=1/users/admin',
  '/api/auth/%252e%252e/users/admin',
  '/api/auth/%252f/users',
  '/api/auth/%255c/users',
  '/api/auth/%00/users',
  '/api/auth/..%00/users',
  '/api/auth/%u002e%u002e/users',
  '/api/auth/%c0%ae%c0%ae/users/admin',
  '/api/auth/%zz/users',
  '//api/users/admin',
  '//evil.example/api/auth/x',
  '/./api/auth/../users/admin',
  '/api/authx/../users/admin',
  '/api/users/..',
  '/api/users/.../x',
  '/API/USERS/admin',
  '/api/auth?/../../users/admin',
];

describe('routing safety (CONTRACT.md "Hard edges")', () => {
  const platform = usePlatform();
  let canary: StubUpstream;

  beforeAll(async () => {
    canary = await startStubUpstream({ name: 'canary' });
  });

  afterAll(async () => {
    await canary?.close();
  });

  it.each(HOSTILE_PATHS)(
    '%s is refused, or reaches an upstream under the prefix of the route that chose it (attack: path traversal)',
    async (path) => {
      const reply = await get(platform.gateway.port, path);
      expect([200, 400, 404]).toContain(reply.status);
      if (reply.status !== 200) {
        const error = JSON.parse(reply.body);
        expect(error).toEqual({
          statusCode: reply.status,
          error: reply.status === 400 ? 'Bad Request' : 'Not Found',
          message:
            reply.status === 400
              ? 'The request path is malformed or ambiguous'
              : 'No route matches this path',
          requestId: expect.any(String),
        });
        return;
      }
      const echo = JSON.parse(reply.body) as { service: ServiceName; path: string };
      const prefix = KNOWN_SERVICES[echo.service].prefix;
      expect(echo.path === prefix || echo.path.startsWith(`${prefix}/`)).toBe(true);
      // What the upstream got is exactly what the gateway routed on: no dot segment, no
      // encoded separator left for it to decode differently.
      expect(echo.path).not.toMatch(/\/\.\.?(\/|$)|%2e|%2f|%5c|\\|\/\//i);
    },
  );

  it('refuses the encoded traversals outright', async () => {
    for (const path of [
      '/api/auth/%2e%2e/users/admin',
      '/api/auth/..%2fusers/admin',
      '/api/auth/..;/users/admin',
      '//api/users/admin',
    ]) {
      expect((await get(platform.gateway.port, path)).status).toBe(400);
    }
  });

  it('routes resolved dot segments by the resolved path, and tells the upstream that path', async () => {
    const reply = await get(platform.gateway.port, '/api/auth/../users/me?x=1');
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toMatchObject({ service: 'admin', url: '/api/users/me?x=1' });
  });

  it('never lets an absolute-form target reach another host (attack: open proxy)', async () => {
    const host = `127.0.0.1:${canary.port}`;
    const routed = await get(
      platform.gateway.port,
      `http://${host}/api/auth/abs?x=1`,
      `Host: ${host}\r\n`,
    );
    expect(routed.status).toBe(200);
    expect(JSON.parse(routed.body)).toMatchObject({ service: 'auth', url: '/api/auth/abs?x=1' });
    const unrouted = await get(platform.gateway.port, `http://${host}/`, `Host: ${host}\r\n`);
    expect(unrouted.status).toBe(404);
    expect(canary.connections).toBe(0);
  });

  it('refuses CONNECT, and opens no tunnel (attack: CONNECT tunnelling)', async () => {
    const host = `127.0.0.1:${canary.port}`;
    const reply = await rawExchange(
      platform.gateway.port,
      `CONNECT ${host} HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
    );
    expect(reply).toMatch(/^HTTP\/1\.1 405 Method Not Allowed\r\n/);
    expect(JSON.parse(parseReply(reply).body)).toMatchObject({
      statusCode: 405,
      message: 'CONNECT is not supported',
    });
    expect(canary.connections).toBe(0);
  });

  it('does not let Host or X-Forwarded-Host choose the upstream (attack: host header routing)', async () => {
    const host = `127.0.0.1:${canary.port}`;
    const reply = await get(
      platform.gateway.port,
      '/api/kira/x',
      `Host: ${host}\r\nX-Forwarded-Host: ${host}\r\n`,
    );
    expect(JSON.parse(reply.body)).toMatchObject({ service: 'kira', url: '/api/kira/x' });
    expect(canary.connections).toBe(0);
  });

  it('never echoes raw input in an error body (attack: reflected injection)', async () => {
    const reply = await get(platform.gateway.port, '/<script>alert(1)</script>?q=<img src=x>');
    expect([400, 404]).toContain(reply.status);
    expect(reply.body).not.toMatch(/<script>|<img|alert/);
  });

  it('refuses an HTTP/1.1 request without Host with a JSON 400', async () => {
    const reply = parseReply(
      await rawExchange(platform.gateway.port, 'GET /api/auth/x HTTP/1.1\r\n\r\n'),
    );
    expect(reply.status).toBe(400);
    expect(JSON.parse(reply.body)).toMatchObject({
      statusCode: 400,
      message: 'An HTTP/1.1 request needs a Host header',
    });
  });
});
