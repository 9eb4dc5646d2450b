import { setTimeout as sleep } from 'node:timers/promises';
import { patternSha256 } from '@helix/shared-testing';
import { openRawConnection, parseRawResponse } from './raw-connection';
import { UUID, useStubbedGateway } from './support';
import { MiB, paceUpload } from './uploads';

describe('long uploads outlive PROXY_TIMEOUT_MS while they move', () => {
  const file = useStubbedGateway(() => ({ PROXY_TIMEOUT_MS: '1500' }), 'file');
  const bytes = 2 * MiB;
  const sha256 = patternSha256(bytes);

  it.each([
    ['a Content-Length', false],
    ['a chunked', true],
  ])(
    'passes %s upload of 2 MiB streamed over 3 s, answered at once after its last byte',
    async (_kind, chunked) => {
      const res = await paceUpload(`${file.gateway.url}/api/files/upload`, bytes, 3000, {
        chunked,
      });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({
        service: 'file',
        method: 'POST',
        url: '/api/files/upload',
        bodySize: bytes,
        sha256,
      });
      expect(res.sentAfterMs).toBeGreaterThanOrEqual(2900);
      expect(res.headAfterMs - res.sentAfterMs).toBeLessThan(1000);
    },
  );

  it.each([
    ['a Content-Length', false],
    ['a chunked', true],
  ])(
    'relays at once the answer of an upstream that answers %s upload before reading it',
    async (_kind, chunked) => {
      const res = await paceUpload(`${file.gateway.url}/api/files/status?code=413`, bytes, 3000, {
        chunked,
      });
      expect(res.status).toBe(413);
      expect(JSON.parse(res.body)).toEqual({ status: 413 });
      expect(res.headAfterMs).toBeLessThan(1000);
    },
  );

  it('still answers 504 when the upstream is silent past PROXY_TIMEOUT_MS after the body', async () => {
    const res = await paceUpload(`${file.gateway.url}/api/files/hang`, 256 * 1024, 1000);
    expect(res.status).toBe(504);
    expect(JSON.parse(res.body)).toMatchObject({
      statusCode: 504,
      message: 'The upstream service did not respond in time',
    });
    // The clock starts when the body has gone: 1.5 s after the last byte, not after the first.
    expect(res.headAfterMs - res.sentAfterMs).toBeGreaterThanOrEqual(1400);
    expect(res.headAfterMs - res.sentAfterMs).toBeLessThan(3000);
  });
});

describe('slow request bodies (BODY_IDLE_TIMEOUT_MS, BODY_MIN_RATE_BYTES_PER_S)', () => {
  const file = useStubbedGateway(
    () => ({
      BODY_IDLE_TIMEOUT_MS: '1000',
      BODY_MIN_RATE_BYTES_PER_S: '200',
      BODY_MIN_RATE_GRACE_MS: '1000',
    }),
    'file',
  );

  async function trickle(path: string, everyMs: number, bytesEach: number) {
    const aborted = file.stub.waitFor((r) => r.url === path && r.aborted, 8000);
    const conn = await openRawConnection(file.gateway.port);
    conn.socket.write(
      `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n` +
        'Content-Length: 100000\r\n\r\nfirst',
    );
    const drip = setInterval(() => {
      if (!conn.socket.destroyed) conn.socket.write('b'.repeat(bytesEach));
    }, everyMs);
    try {
      const closed = await Promise.race([
        conn.closed,
        sleep(6000, undefined, { ref: false }).then(() => undefined),
      ]);
      expect(closed).toBeDefined();
      const res = parseRawResponse(conn.received());
      expect(res.statusLine).toBe('HTTP/1.1 408 Request Timeout');
      const body = JSON.parse(res.body) as { requestId: string };
      expect(body).toEqual({
        statusCode: 408,
        error: 'Request Timeout',
        message: 'The request body was not received in time',
        requestId: expect.stringMatching(UUID),
      });
      expect(res.headers.connection).toBe('close');
      expect(await aborted).toMatchObject({ method: 'POST', aborted: true });
      return (closed ?? Infinity) - conn.openedAt;
    } finally {
      clearInterval(drip);
      conn.socket.destroy();
    }
  }

  it('cuts a body that stops moving (slowloris on the body) with 408 after the idle limit', async () => {
    const elapsed = await trickle('/api/files/stalled', 60_000, 1);
    expect(elapsed).toBeGreaterThanOrEqual(1000);
    expect(elapsed).toBeLessThan(2500);
  });

  it('cuts a body that trickles under the minimum rate (R.U.D.Y.) with 408, though never idle', async () => {
    // One byte every 300 ms: never idle for 1 s, but far under 200 bytes a second.
    const elapsed = await trickle('/api/files/trickle', 300, 1);
    expect(elapsed).toBeGreaterThanOrEqual(1000);
    expect(elapsed).toBeLessThan(3500);
  });

  it('lets an honest slow body through: 4 KiB a second for 3 s', async () => {
    const res = await paceUpload(`${file.gateway.url}/api/files/honest`, 12 * 1024, 3000, {
      pieceBytes: 1024,
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ bodySize: 12 * 1024 });
  });
});
