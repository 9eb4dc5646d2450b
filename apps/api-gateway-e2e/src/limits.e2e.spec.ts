import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type GatewayProcess,
  httpRequest,
  startGateway,
  startStubUpstream,
  type StubUpstream,
} from '@helix/shared-testing';
import { hasWholeResponse, openRawConnection, parseRawResponse } from './raw-connection';
import { UUID, useStubbedGateway } from './support';

/** Requests the stub saw on a path the test chose (the background health checker's excluded). */
function seenOn(stub: StubUpstream, path: string) {
  return stub.requests.filter((r) => r.url.split('?')[0] === path);
}

describe('header limits', () => {
  const auth = useStubbedGateway(() => ({
    MAX_HEADER_BYTES: '4096',
    MAX_HEADERS_COUNT: '20',
  }));

  it('stops oversized request headers (header-overflow memory abuse) with 431 JSON and a closed connection', async () => {
    const conn = await openRawConnection(auth.gateway.port);
    conn.socket.write(
      `GET /api/auth/oversized HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(6 * 1024)}\r\n\r\n`,
    );
    const closedAt = await conn.closed;
    expect(conn.serverEnded()).toBe(true);
    expect(closedAt - conn.openedAt).toBeLessThan(2000);
    const res = parseRawResponse(conn.received());
    expect(res.statusLine).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    const body = JSON.parse(res.body) as { requestId: string };
    expect(body).toEqual({
      statusCode: 431,
      error: 'Request Header Fields Too Large',
      message: 'The request headers are too large',
      requestId: expect.stringMatching(UUID),
    });
    expect(res.headers).toEqual({
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(res.body)),
      'x-request-id': body.requestId,
      connection: 'close',
    });
    await sleep(200);
    expect(seenOn(auth.stub, '/api/auth/oversized')).toEqual([]);
  });

  it('stops a flood of header fields (hash-table / CPU abuse) with 431 JSON, nothing forwarded', async () => {
    // Node's client adds Host and Connection: 28 + 2 = 30 fields against a limit of 20.
    const headers = Object.fromEntries(
      Array.from({ length: 28 }, (_, i) => [`x-field-${i}`, String(i)]),
    );
    const res = await httpRequest(`${auth.gateway.url}/api/auth/many-fields`, { headers });
    expect(res.status).toBe(431);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['x-request-id']).toMatch(UUID);
    // Node's parser (maxHeadersCount is the limit + 1) refuses this many fields itself, as a
    // header overflow: the same answer as oversized headers, and the connection is closed.
    expect(res.headers.connection).toBe('close');
    expect(res.json()).toEqual({
      statusCode: 431,
      error: 'Request Header Fields Too Large',
      message: 'The request headers are too large',
      requestId: res.headers['x-request-id'],
    });
    await sleep(200);
    expect(seenOn(auth.stub, '/api/auth/many-fields')).toEqual([]);
  });

  it('counts header fields exactly: 20 pass, 21 are refused', async () => {
    const fields = (n: number) =>
      Object.fromEntries(Array.from({ length: n - 2 }, (_, i) => [`x-field-${i}`, String(i)]));
    const atLimit = await httpRequest(`${auth.gateway.url}/api/auth/twenty`, {
      headers: fields(20),
    });
    expect(atLimit.status).toBe(200);
    expect(atLimit.json()).toMatchObject({ url: '/api/auth/twenty' });
    const over = await httpRequest(`${auth.gateway.url}/api/auth/twenty-one`, {
      headers: fields(21),
    });
    expect(over.status).toBe(431);
    expect(over.json()).toEqual({
      statusCode: 431,
      error: 'Request Header Fields Too Large',
      message: 'The request has too many header fields',
      requestId: over.headers['x-request-id'],
    });
    expect(seenOn(auth.stub, '/api/auth/twenty-one')).toEqual([]);
  });
});

describe('slowloris', () => {
  const auth = useStubbedGateway(() => ({
    HEADERS_TIMEOUT_MS: '1000',
    REQUEST_TIMEOUT_MS: '2000',
  }));

  it('cuts off a client that dribbles header lines forever (slowloris) with 408, and keeps serving others', async () => {
    const conn = await openRawConnection(auth.gateway.port);
    conn.socket.write('GET /api/auth/slowloris HTTP/1.1\r\nHost: x\r\n');
    let line = 0;
    const dribble = setInterval(() => {
      if (!conn.socket.destroyed) conn.socket.write(`X-Drip-${line++}: y\r\n`);
    }, 300);
    try {
      // A normal client is served while the slow one holds its connection.
      await sleep(400);
      const normal = await httpRequest(`${auth.gateway.url}/api/auth/normal`);
      expect(normal.status).toBe(200);
      expect(normal.json()).toMatchObject({ url: '/api/auth/normal' });

      const closed = await Promise.race([conn.closed, sleep(3500).then(() => undefined)]);
      const res = parseRawResponse(conn.received());
      expect(res.statusLine).toBe('HTTP/1.1 408 Request Timeout');
      const body = JSON.parse(res.body) as { requestId: string };
      expect(body).toEqual({
        statusCode: 408,
        error: 'Request Timeout',
        message: expect.stringMatching(/^The request (headers were|was) not received in time$/),
        requestId: expect.stringMatching(UUID),
      });
      expect(res.headers).toEqual({
        'content-type': 'application/json; charset=utf-8',
        'content-length': String(Buffer.byteLength(res.body)),
        'x-request-id': body.requestId,
        connection: 'close',
      });
      // The connection must be gone, not merely half-closed while the client keeps dribbling.
      expect(closed).toBeDefined();
      expect((closed ?? Infinity) - conn.openedAt).toBeLessThan(3500);
      expect(seenOn(auth.stub, '/api/auth/slowloris')).toEqual([]);
    } finally {
      clearInterval(dribble);
      conn.socket.destroy();
    }
  });
});

describe('slow request body', () => {
  const auth = useStubbedGateway(() => ({
    HEADERS_TIMEOUT_MS: '1000',
    REQUEST_TIMEOUT_MS: '1500',
  }));

  it('cuts off a body that never finishes (slow POST) and aborts the upstream request', async () => {
    const aborted = auth.stub.waitFor((r) => r.url === '/api/auth/slow-body' && r.aborted, 6000);
    const conn = await openRawConnection(auth.gateway.port);
    conn.socket.write(
      'POST /api/auth/slow-body HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n' +
        `Content-Length: 100000\r\n\r\n${'b'.repeat(100)}`,
    );
    const closed = await Promise.race([conn.closed, sleep(3500).then(() => undefined)]);
    expect(closed).toBeDefined();
    expect((closed ?? Infinity) - conn.openedAt).toBeLessThan(3500);
    const upstream = await aborted;
    expect(upstream).toMatchObject({ method: 'POST', bodySize: 100, aborted: true });
    // Whatever the gateway answered (408 when nothing was written yet), it is a whole JSON error.
    if (conn.received() !== '') {
      const res = parseRawResponse(conn.received());
      expect(res.statusLine).toBe('HTTP/1.1 408 Request Timeout');
      expect(JSON.parse(res.body)).toMatchObject({ statusCode: 408, error: 'Request Timeout' });
    }
  });
});

describe('per-route body limit (maxBodyBytes)', () => {
  const LIMIT = 1000;
  let stub: StubUpstream;
  let gateway: GatewayProcess;
  let dir: string;

  beforeAll(async () => {
    stub = await startStubUpstream({ name: 'file' });
    dir = await mkdtemp(join(tmpdir(), 'helix-limits-'));
    const routesFile = join(dir, 'routes.yaml');
    await writeFile(
      routesFile,
      [
        'routes:',
        '  - prefix: /api/files',
        '    service: file',
        `    targets: [${stub.url}]`,
        `    maxBodyBytes: ${LIMIT}`,
        '',
      ].join('\n'),
    );
    gateway = await startGateway({ GATEWAY_ROUTES_FILE: routesFile });
  });

  afterAll(async () => {
    await gateway?.stop();
    await stub?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses an announced oversized body (upload flooding) with 413 before anything reaches the upstream', async () => {
    const res = await httpRequest(`${gateway.url}/api/files/too-big`, {
      method: 'POST',
      body: Buffer.alloc(LIMIT + 1, 7),
    });
    expect(res.status).toBe(413);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers.connection).toBe('close');
    expect(res.json()).toEqual({
      statusCode: 413,
      error: 'Payload Too Large',
      message: 'The request body is larger than this route accepts',
      requestId: res.headers['x-request-id'],
    });
    expect(res.headers['x-request-id']).toMatch(UUID);
    await sleep(200);
    expect(seenOn(stub, '/api/files/too-big')).toEqual([]);
  });

  it('stops a chunked body that grows past the limit (unannounced upload flooding) and aborts the upstream', async () => {
    let sent = 0;
    const body = new Readable({
      read() {
        if (sent >= 20 * LIMIT) return void this.push(null);
        sent += 250;
        setTimeout(() => this.push(Buffer.alloc(250, 1)), 20);
      },
    });
    const outcome = await new Promise<{ status?: number; text?: string; error?: string }>(
      (resolve) => {
        const req = request(`${gateway.url}/api/files/chunked-flood`, {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream' },
          agent: false,
        });
        req.on('error', (err) => resolve({ error: err.message }));
        req.on('response', (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode, text }));
          res.on('error', (err) => resolve({ error: err.message }));
        });
        body.pipe(req);
      },
    );
    body.destroy();
    if (outcome.error === undefined) {
      expect({ status: outcome.status, body: JSON.parse(outcome.text ?? '') }).toEqual({
        status: 413,
        body: {
          statusCode: 413,
          error: 'Payload Too Large',
          message: 'The request body is larger than this route accepts',
          requestId: expect.stringMatching(UUID),
        },
      });
    } else {
      expect(outcome.error).toMatch(/ECONNRESET|EPIPE|socket hang up/);
    }
    const upstream = await stub.waitFor((r) => r.url === '/api/files/chunked-flood' && r.aborted);
    expect(upstream.bodySize).toBeLessThanOrEqual(LIMIT);
    // The client stopped sending long before its 20 kB were out.
    expect(sent).toBeLessThan(20 * LIMIT);
  });

  it('passes bodies within the limit byte for byte, announced or chunked', async () => {
    const exact = randomBytes(LIMIT);
    const announced = await httpRequest(`${gateway.url}/api/files/at-limit`, {
      method: 'PUT',
      body: exact,
    });
    expect(announced.status).toBe(200);
    expect(announced.json()).toMatchObject({
      url: '/api/files/at-limit',
      bodySize: LIMIT,
      sha256: createHash('sha256').update(exact).digest('hex'),
    });

    const parts = [randomBytes(300), randomBytes(300), randomBytes(300)];
    const chunked = await httpRequest(`${gateway.url}/api/files/chunked-under`, {
      method: 'POST',
      body: Readable.from(parts),
    });
    expect(chunked.status).toBe(200);
    expect(chunked.json()).toMatchObject({
      url: '/api/files/chunked-under',
      bodySize: 900,
      sha256: createHash('sha256').update(Buffer.concat(parts)).digest('hex'),
    });
    const seen = await stub.waitFor((r) => r.url === '/api/files/chunked-under');
    expect(seen.headers['transfer-encoding']).toBe('chunked');
  });
});

describe('idle client keep-alive', () => {
  const auth = useStubbedGateway(() => ({ KEEP_ALIVE_TIMEOUT_MS: '500' }));

  it('closes an idle keep-alive connection (connection hoarding) soon after KEEP_ALIVE_TIMEOUT_MS', async () => {
    const conn = await openRawConnection(auth.gateway.port);
    conn.socket.write('GET /api/auth/keep-alive HTTP/1.1\r\nHost: x\r\n\r\n');
    const text = await conn.waitForText(hasWholeResponse);
    const answeredAt = Date.now();
    const res = parseRawResponse(text);
    expect(res.statusLine).toBe('HTTP/1.1 200 OK');
    expect(res.headers.connection).toBe('keep-alive');
    const idleFor = (await conn.closed) - answeredAt;
    expect(conn.serverEnded()).toBe(true);
    // Node 24 keeps the socket keepAliveTimeoutBuffer (1 s) past the announced timeout.
    expect(idleFor).toBeGreaterThanOrEqual(400);
    expect(idleFor).toBeLessThan(2000);
  });
});

describe('upstream idle pool timeout', () => {
  const auth = useStubbedGateway(() => ({ UPSTREAM_IDLE_TIMEOUT_MS: '300' }));

  async function upstreamPortOf(path: string): Promise<number> {
    const res = await httpRequest(`${auth.gateway.url}${path}`);
    expect(res.status).toBe(200);
    return (await auth.stub.waitFor((r) => r.url === path)).remotePort;
  }

  it('reuses a pooled upstream connection at once and drops it after UPSTREAM_IDLE_TIMEOUT_MS', async () => {
    const first = await upstreamPortOf('/api/auth/pool-1');
    const quick = await upstreamPortOf('/api/auth/pool-2');
    expect(quick).toBe(first);
    await sleep(800);
    const connectionsBefore = auth.stub.connections;
    const late = await upstreamPortOf('/api/auth/pool-3');
    expect(late).not.toBe(first);
    expect(auth.stub.connections).toBe(connectionsBefore + 1);
  });

  it('never fails a request on a pooled connection closed around the idle timeout (stale-socket reset)', async () => {
    const gaps = [0, 100, 250, 290, 300, 310, 350, 500, 0, 280, 320];
    const statuses: number[] = [];
    for (const [i, gap] of gaps.entries()) {
      await sleep(gap);
      const res = await httpRequest(`${auth.gateway.url}/api/auth/gap-${i}`);
      statuses.push(res.status);
    }
    expect(statuses).toEqual(gaps.map(() => 200));
  });
});
