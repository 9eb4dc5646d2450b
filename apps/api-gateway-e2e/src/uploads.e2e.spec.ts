import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { patternChunk, patternSha256 } from '@helix/shared-testing';
import { openRawConnection, parseRawResponse } from './raw-connection';
import { UUID, useStubbedGateway } from './support';

const MiB = 1024 * 1024;

function rssOf(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

interface Upload {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** ms from the first byte sent to the response head, and to the last byte sent. */
  headAfterMs: number;
  sentAfterMs: number;
}

/**
 * POSTs `bytes` of the download pattern (patternSha256 gives their digest) to `url` at a steady
 * pace that takes `durationMs`, with a Content-Length or chunked, and reads the whole answer.
 */
function paceUpload(
  url: string,
  bytes: number,
  durationMs: number,
  options: { chunked?: boolean; pieceBytes?: number } = {},
): Promise<Upload> {
  const piece = options.pieceBytes ?? 64 * 1024;
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let headAt = 0;
    let sentAt = 0;
    const req = request(url, {
      method: 'POST',
      agent: false,
      headers: {
        'content-type': 'application/octet-stream',
        ...(options.chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': bytes }),
      },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      headAt = Date.now();
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        // An answer before the whole body: the rest is not sent, so nothing waits for it.
        if (sentAt === 0) req.destroy();
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(parts).toString(),
          headAfterMs: headAt - started,
          sentAfterMs: (sentAt || Date.now()) - started,
        });
      });
    });
    const send = async () => {
      for (let offset = 0; offset < bytes; offset += piece) {
        if (req.destroyed || headAt !== 0) return;
        const due = started + (durationMs * offset) / bytes;
        if (due > Date.now()) await sleep(due - Date.now());
        if (!req.write(patternChunk(offset, Math.min(piece, bytes - offset)))) {
          await new Promise((r) => req.once('drain', r));
        }
      }
      sentAt = Date.now();
      req.end();
    };
    send().catch(reject);
  });
}

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

describe('a 1 GiB upload slower than PROXY_TIMEOUT_MS', () => {
  const file = useStubbedGateway(() => ({ PROXY_TIMEOUT_MS: '1000' }), 'file');

  it('passes with its sha256 intact and the gateway memory flat', async () => {
    const bytes = 1024 * MiB;
    const pid = file.gateway.child.pid as number;
    const expected = patternSha256(bytes);
    const baseline = rssOf(pid);
    const samples: number[] = [];
    const sampler = setInterval(() => samples.push(rssOf(pid)), 250);
    try {
      // 10 s at about 100 MiB/s: ten times the time-to-first-byte limit, gentle on a shared CI.
      const res = await paceUpload(`${file.gateway.url}/api/files/big-upload`, bytes, 10_000);
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({ bodySize: bytes, sha256: expected });
      expect(res.sentAfterMs).toBeGreaterThanOrEqual(9900);
    } finally {
      clearInterval(sampler);
    }
    // Buffered, RSS would climb towards 1 GiB. Streamed, it jumps by what the young generation
    // grows to (40 to 90 MiB measured) in the first second, then holds: no trend after that.
    const half = Math.floor(samples.length / 2);
    const early = Math.max(...samples.slice(0, half));
    const late = Math.max(...samples.slice(half));
    expect(Math.max(early, late) - baseline).toBeLessThan(128 * MiB);
    expect(late - early).toBeLessThan(32 * MiB);
  }, 60_000);
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
