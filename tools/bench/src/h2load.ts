// h2load (nghttp2's load generator, Debian package nghttp2-client) as the bench's HTTP/2 client:
// autocannon and undici's pool speak HTTP/1.1 only. One h2load thread, as autocannon is one.
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { findCommand } from './processes.ts';
import { percentile, roundMs } from './stats.ts';

const run = promisify(execFile);

/** What h2load asks for in ALPN, named as ALPN names it (RFC 7301 §6). */
export type AlpnProtocol = 'h2' | 'http/1.1';

export interface H2loadLoad {
  protocol: AlpnProtocol;
  connections: number;
  /** Requests in flight on each connection: HTTP/2 streams (`-m`); 1 for HTTP/1.1. */
  streams: number;
  seconds: number;
  /** Load before the measured seconds on the same connections, not counted (0: none). */
  warmupSeconds: number;
  /** A fixed total rate (split over the connections) instead of a closed loop. */
  ratePerSecond?: number;
}

/** One h2load run. Latencies in milliseconds, from request sent to its stream's end. */
export interface H2loadRun {
  requestsPerSecond: number;
  /** Answered with 2xx or 3xx: h2load's "succeeded". */
  succeeded: number;
  /** h2load's "failed": reset, errored, timed out, or answered 4xx or 5xx. */
  failed: number;
  /** 3xx, 4xx and 5xx answers. */
  non2xx: number;
  /** Nearest-rank percentiles of every finished request in h2load's `--log-file`. */
  p50Ms: number;
  p99Ms: number;
  /** h2load's own "time for request" line, which has no percentiles. */
  minMs: number;
  maxMs: number;
  meanMs: number;
  sdMs: number;
  /** The TLS version and cipher h2load negotiated, e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384". */
  tls: string;
}

function h2load(): string {
  return findCommand('h2load', 'nghttp2-client');
}

/** h2load's version line, for the results. */
export function h2loadVersion(): string {
  return execFileSync(h2load(), ['--version'], { encoding: 'utf8' }).trim();
}

/** h2load's durations: "950us", "4.24ms", "1.02s". */
function parseDurationMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text);
  if (!match) throw new Error(`h2load printed a duration it cannot read: "${text}"`);
  const factor = { us: 1e-3, ms: 1, s: 1e3 }[match[2] as 'us' | 'ms' | 's'];
  return roundMs(Number(match[1]) * factor);
}

function numbers(output: string, pattern: RegExp, what: string): number[] {
  const match = pattern.exec(output);
  if (!match) throw new Error(`h2load printed no ${what} line:\n${output}`);
  return match.slice(1).map(Number);
}

/** The summary h2load prints at the end of a run; throws if a line is missing. */
export function parseH2loadOutput(
  output: string,
): Omit<H2loadRun, 'p50Ms' | 'p99Ms'> & { protocol: string; status2xx: number } {
  const [requestsPerSecond] = numbers(output, /finished in [^,]+, ([\d.]+) req\/s/, 'finished');
  const [, , , succeeded, failed] = numbers(
    output,
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed/,
    'requests',
  );
  const [status2xx, s3xx, s4xx, s5xx] = numbers(
    output,
    /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/,
    'status codes',
  );
  const times = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)/.exec(output);
  if (!times) throw new Error(`h2load printed no "time for request" line:\n${output}`);
  const [minMs, maxMs, meanMs, sdMs] = times.slice(1).map(parseDurationMs);
  const protocol = /Application protocol: (\S+)/.exec(output)?.[1] ?? 'none';
  const tls = [/TLS Protocol: (\S+)/, /Cipher: (\S+)/]
    .map((pattern) => pattern.exec(output)?.[1] ?? '?')
    .join(' ');
  return {
    protocol,
    status2xx,
    requestsPerSecond,
    succeeded,
    failed,
    non2xx: s3xx + s4xx + s5xx,
    minMs,
    maxMs,
    meanMs,
    sdMs,
    tls,
  };
}

/**
 * Response times of the finished requests in an h2load `--log-file` (start µs, status, µs to
 * the stream's end, one request a line), ascending, in microseconds. A status of -1 is a failed
 * stream; 0 is a request whose response head came during the warm-up and whose end came after
 * it (h2load records no status then), which h2load itself counts as succeeded and timed.
 */
function readResponseTimes(logFile: string): Float64Array {
  const times: number[] = [];
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    const [, status, micros] = line.split('\t');
    if (micros !== undefined && status !== '-1') times.push(Number(micros));
  }
  return Float64Array.from(times).sort();
}

/**
 * Runs h2load against `url` with `headers` and returns its figures. Throws if it did not speak
 * `load.protocol` (the server chose another by ALPN) or answered no 2xx at all: either run would
 * measure something else than asked. `logFile` must not exist: h2load appends to it.
 */
export async function runH2load(
  url: string,
  headers: Record<string, string>,
  load: H2loadLoad,
  logFile: string,
): Promise<H2loadRun> {
  const args = [
    ...(load.protocol === 'http/1.1' ? ['--h1'] : []),
    `--clients=${load.connections}`,
    `--max-concurrent-streams=${load.streams}`,
    `--duration=${load.seconds}s`,
    ...(load.warmupSeconds > 0 ? [`--warm-up-time=${load.warmupSeconds}s`] : []),
    ...(load.ratePerSecond === undefined ? [] : [`--rps=${load.ratePerSecond / load.connections}`]),
    ...Object.entries(headers).map(([name, value]) => `--header=${name}: ${value}`),
    `--log-file=${logFile}`,
    url,
  ];
  try {
    const { stdout } = await run(h2load(), args, {
      // h2load stops by itself after the duration; this bounds a run that hangs on a dead server.
      timeout: (load.warmupSeconds + load.seconds + 30) * 1000,
    });
    const { protocol, status2xx, ...figures } = parseH2loadOutput(stdout);
    if (protocol !== load.protocol) {
      throw new Error(`h2load ${url}: asked for ${load.protocol}, the server chose ${protocol}`);
    }
    if (status2xx === 0) {
      throw new Error(`h2load ${url}: no 2xx answer in ${load.seconds} s:\n${stdout}`);
    }
    const times = readResponseTimes(logFile);
    return {
      ...figures,
      p50Ms: roundMs(percentile(times, 50) / 1000),
      p99Ms: roundMs(percentile(times, 99) / 1000),
    };
  } finally {
    rmSync(logFile, { force: true });
  }
}
