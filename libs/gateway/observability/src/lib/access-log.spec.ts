import pino from 'pino';
import { AccessLog, type AccessEntry, isoNow, serializeAccessEntry } from './access-log';

const entry: AccessEntry = {
  requestId: 'req-1',
  method: 'GET',
  path: '/api/auth/x?q=1',
  route: '/api/auth',
  service: 'auth',
  status: 200,
  aborted: false,
  bytesIn: 120,
  bytesOut: 640,
  protocol: undefined,
  durationMs: 1.234,
  upstreamTtfbMs: 0.5,
  upstreamFailure: undefined,
  retries: 0,
  clientIp: '127.0.0.1',
  userAgent: 'curl/8',
  traceId: undefined,
  spanId: undefined,
};

/** A stream that keeps what it is given, as the root logger's destination would write it. */
function capture(): { chunks: string[]; log: AccessLog } {
  const chunks: string[] = [];
  const logger = pino({ base: undefined }, { write: (chunk: string) => chunks.push(chunk) });
  return { chunks, log: new AccessLog(logger) };
}

describe('serializeAccessEntry', () => {
  it('writes the line pino would write: level, time, the fields in order, msg, a newline', () => {
    const line = serializeAccessEntry(entry);
    expect(line.endsWith('}\n')).toBe(true);
    const parsed = JSON.parse(line);
    expect(Object.keys(parsed)).toEqual([
      'level',
      'time',
      'requestId',
      'method',
      'path',
      'route',
      'service',
      'status',
      'bytesIn',
      'bytesOut',
      'durationMs',
      'upstreamTtfbMs',
      'clientIp',
      'userAgent',
      'msg',
    ]);
    expect(parsed).toMatchObject({ level: 'info', status: 200, bytesOut: 640, msg: 'request' });
    expect(new Date(parsed.time).toISOString()).toBe(parsed.time);
  });

  it('leaves out what is undefined, and aborted and retries unless they say something', () => {
    const parsed = JSON.parse(
      serializeAccessEntry({
        ...entry,
        service: undefined,
        bytesIn: undefined,
        aborted: true,
        retries: 1,
        protocol: 'h2',
        upstreamFailure: 'refused',
        traceId: 'a'.repeat(32),
        spanId: 'b'.repeat(16),
      }),
    );
    expect(parsed).not.toHaveProperty('service');
    expect(parsed).not.toHaveProperty('bytesIn');
    expect(parsed).toMatchObject({
      aborted: true,
      retries: 1,
      protocol: 'h2',
      upstreamFailure: 'refused',
      traceId: 'a'.repeat(32),
      spanId: 'b'.repeat(16),
    });
  });

  it('escapes what a client controls, so a line is always one JSON object', () => {
    const hostile = 'a"b\\c\nd\u0000e\u2028f\ud800é';
    const line = serializeAccessEntry({ ...entry, path: `/x?${hostile}`, userAgent: hostile });
    expect(line.indexOf('\n')).toBe(line.length - 1);
    const parsed = JSON.parse(line);
    expect(parsed.userAgent).toBe(hostile);
    expect(parsed.path).toBe(`/x?${hostile}`);
  });
});

describe('isoNow', () => {
  afterEach(() => jest.useRealTimers());

  it('is toISOString of now, across a second boundary', () => {
    jest.useFakeTimers({ now: Date.parse('2026-12-02T06:00:00.998Z') });
    expect(isoNow()).toBe('2026-12-02T06:00:00.998Z');
    jest.advanceTimersByTime(1);
    expect(isoNow()).toBe('2026-12-02T06:00:00.999Z');
    jest.advanceTimersByTime(1);
    expect(isoNow()).toBe('2026-12-02T06:00:01.000Z');
    jest.advanceTimersByTime(3_600_000 + 7);
    expect(isoNow()).toBe(new Date().toISOString());
  });
});

describe('AccessLog', () => {
  afterEach(() => jest.useRealTimers());

  it('writes lines in batches, whole, on the logger’s own stream', () => {
    const { chunks, log } = capture();
    log.write(entry);
    log.write({ ...entry, requestId: 'req-2' });
    expect(chunks).toEqual([]);
    log.flush();
    expect(chunks).toHaveLength(1);
    expect(
      chunks[0]
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l).requestId),
    ).toEqual(['req-1', 'req-2']);
    log.flush();
    expect(chunks).toHaveLength(1);
  });

  it('writes a batch once it is large, and what is pending after a quarter of a second', () => {
    jest.useFakeTimers();
    const { chunks, log } = capture();
    const perBatch = Math.ceil(16384 / serializeAccessEntry(entry).length);
    for (let i = 0; i < perBatch; i++) log.write(entry);
    expect(chunks).toHaveLength(1);
    log.write(entry);
    expect(chunks).toHaveLength(1);
    jest.advanceTimersByTime(249);
    expect(chunks).toHaveLength(1);
    jest.advanceTimersByTime(1);
    expect(chunks).toHaveLength(2);
    expect(chunks[1].split('\n').filter(Boolean)).toHaveLength(1);
  });
});
