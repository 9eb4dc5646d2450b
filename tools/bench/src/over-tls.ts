// The TLS runs of `npm run bench`: the gateway with TLS_CERT_FILE and TLS_KEY_FILE, the bare Node
// proxy on Node's HTTP/2 server, and nginx, with the same certificate, all in front of the demo
// upstream the cleartext runs use, each loaded by h2load over HTTP/2 and over HTTP/1.1 on TLS.
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type BenchCertificates, makeCertificates } from './certificates.ts';
import { type AlpnProtocol, type H2loadRun, h2loadVersion, runH2load } from './h2load.ts';
import { nginxVersion, startNginx } from './nginx.ts';
import {
  failure,
  findCommand,
  type ProcessGroup,
  type ServiceProcess,
  waitForListeningUrl,
} from './processes.ts';
import { mean } from './stats.ts';
import {
  gatewayEnvironment,
  HEADERS,
  PATH,
  spawnGateway,
  START_TIMEOUT_MS,
  startBaseline,
} from './targets.ts';

export const TLS_TARGETS = ['gateway', 'bare-node', 'nginx'] as const;
export type TlsTargetName = (typeof TLS_TARGETS)[number];
export const TLS_PROTOCOLS = ['h2', 'http/1.1'] as const satisfies readonly AlpnProtocol[];
export type TlsProtocol = (typeof TLS_PROTOCOLS)[number];

/**
 * Streams per HTTP/2 connection. The h2 runs keep as many requests in flight as the HTTP/1.1
 * runs (`--connections`) on a tenth of the connections: several streams on each, as HTTP/2
 * clients multiplex, well under the gateway's HTTP2_MAX_CONCURRENT_STREAMS (100) and nginx's
 * http2_max_concurrent_streams (128); and ten connections, not one, so that neither server does
 * all its work for one socket and one TLS session.
 */
const H2_STREAMS_PER_CONNECTION = 10;
const POLL_INTERVAL_MS = 20;
const ANSWER_TIMEOUT_MS = 2000;
const SETTLE_MS = 1000;

/** One target and protocol: means over the rounds, counts summed. */
export interface TlsSummary {
  connections: number;
  streams: number;
  requestsPerSecond: number;
  minRequestsPerSecond: number;
  maxRequestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  failed: number;
  non2xx: number;
  rounds: H2loadRun[];
}

/** The versions of the programs the TLS runs use. */
export interface TlsTools {
  h2load: string;
  nginx: string;
}

export interface TlsFigures extends TlsTools {
  /** What each target is. */
  targets: Record<TlsTargetName, string>;
  certificate: string;
  runs: Record<TlsTargetName, Record<TlsProtocol, TlsSummary>>;
  /** Ratios of mean req/s. */
  ratios: {
    'gateway/nginx, h2': number;
    'gateway/nginx, http/1.1 over TLS': number;
    'gateway, h2 / http/1.1 over TLS': number;
    /** What Node's own HTTP/2 server makes of the same load, against its HTTP/1.1. */
    'bare-node, h2 / http/1.1 over TLS': number;
  };
}

const DESCRIPTIONS: Record<TlsTargetName, string> = {
  gateway:
    'the built gateway as in the cleartext runs, plus TLS_CERT_FILE and TLS_KEY_FILE: HTTP/2 and HTTP/1.1 by ALPN on its one port, HTTP2_MAX_CONCURRENT_STREAMS at its default',
  'bare-node':
    'bare-node-proxy.ts with TLS_CERT_FILE and TLS_KEY_FILE: http2.createSecureServer with allowHTTP1, the compatibility API as the gateway uses it, http.request with a keep-alive Agent, no header policy beyond dropping the fields HTTP/2 forbids',
  nginx:
    'nginx, one worker, listen ssl http2, proxy_pass to an upstream block with keepalive 64 (proxy_http_version 1.1, Connection ""), no access log (nginx.ts)',
};

/** Connections and streams of one protocol: `inFlight` requests in flight either way. */
export function shapeOf(
  protocol: TlsProtocol,
  inFlight: number,
): { connections: number; streams: number } {
  const streams = protocol === 'h2' ? H2_STREAMS_PER_CONNECTION : 1;
  return { connections: Math.max(1, Math.round(inFlight / streams)), streams };
}

/** Why `url` did not answer the auth upstream's echo over HTTP/2, or undefined if it did. */
function askOverHttp2(url: string, ca: Buffer): Promise<string | undefined> {
  const { origin, pathname } = new URL(url);
  return new Promise((resolve) => {
    const session = http2.connect(origin, { ca });
    const done = (problem: string | undefined) => {
      session.destroy();
      resolve(problem);
    };
    session.once('error', (err) => done(err.message));
    // No Accept-Encoding: this client has no decoder, and the echo is all it looks at.
    const request = session.request({ ':path': pathname, origin: HEADERS.origin });
    request.setTimeout(ANSWER_TIMEOUT_MS, () => done(`no answer in ${ANSWER_TIMEOUT_MS} ms`));
    let status = 0;
    let body = '';
    request.setEncoding('utf8');
    request.once('response', (headers) => (status = Number(headers[':status'])));
    request.on('data', (chunk: string) => (body += chunk));
    request.once('error', (err) => done(err.message));
    request.once('end', () => {
      let service: unknown;
      try {
        service = (JSON.parse(body) as { service?: unknown }).service;
      } catch {
        service = undefined;
      }
      if (session.alpnProtocol !== 'h2') done(`ALPN chose ${session.alpnProtocol}, not h2`);
      else if (status !== 200 || service !== 'auth')
        done(`answered ${status}, not the auth upstream's echo`);
      else done(undefined);
    });
  });
}

/**
 * Polls until `url` answers the echo over HTTP/2 with a certificate the bench's CA signed: a
 * benchmark of 404s, of the wrong upstream or of a failed handshake would measure nothing.
 */
async function waitForEcho(service: ServiceProcess, url: string, ca: Buffer): Promise<void> {
  const deadline = performance.now() + START_TIMEOUT_MS;
  for (;;) {
    const problem = await askOverHttp2(url, ca);
    if (problem === undefined) return;
    if (service.child.exitCode !== null)
      throw failure(service, `exited with ${service.child.exitCode}`);
    if (performance.now() > deadline) throw failure(service, `GET ${url}: ${problem}`);
    await sleep(POLL_INTERVAL_MS);
  }
}

/**
 * The gateway of `gatewayEnvironment` plus TLS_CERT_FILE and TLS_KEY_FILE, once it answers the
 * echo over HTTP/2; `nodeFlags` go after the image's own.
 */
export async function startGatewayOverTls(
  group: ProcessGroup,
  upstreamUrl: string,
  certificates: BenchCertificates,
  nodeFlags: readonly string[] = [],
): Promise<{ service: ServiceProcess; url: string }> {
  const env = {
    ...(await gatewayEnvironment(upstreamUrl)),
    TLS_CERT_FILE: certificates.certFile,
    TLS_KEY_FILE: certificates.keyFile,
  };
  const service = spawnGateway(group, env, nodeFlags);
  const url = await waitForListeningUrl(service, START_TIMEOUT_MS);
  await waitForEcho(service, `${url}${PATH}`, readFileSync(certificates.caFile));
  return { service, url };
}

function summarize(
  rounds: H2loadRun[],
  shape: { connections: number; streams: number },
): TlsSummary {
  const rps = rounds.map((r) => r.requestsPerSecond);
  return {
    ...shape,
    requestsPerSecond: mean(rps),
    minRequestsPerSecond: Math.min(...rps),
    maxRequestsPerSecond: Math.max(...rps),
    p50Ms: mean(rounds.map((r) => r.p50Ms)),
    p99Ms: mean(rounds.map((r) => r.p99Ms)),
    failed: rounds.reduce((n, r) => n + r.failed, 0),
    non2xx: rounds.reduce((n, r) => n + r.non2xx, 0),
    rounds,
  };
}

/** Throws if h2load, nginx or openssl is missing: at the start, not after the other runs. */
export function findTlsTools(): TlsTools {
  findCommand('openssl', 'openssl');
  return { h2load: h2loadVersion(), nginx: nginxVersion() };
}

/**
 * Certificates made for this run and both TLS targets started, then `rounds` rounds alternating
 * targets and protocols like the cleartext saturation runs, each run after its own warm-up on
 * its own connections. Stops both targets before it returns.
 */
export async function measureOverTls(
  group: ProcessGroup,
  upstreamUrl: string,
  options: { rounds: number; seconds: number; warmup: number; connections: number },
  tools: TlsTools,
  say: (line: string) => void,
): Promise<TlsFigures> {
  const dir = group.makeDir('tls');
  const certificates = makeCertificates(dir);
  const gateway = await startGatewayOverTls(group, upstreamUrl, certificates);
  const bare = await startBaseline(
    group,
    'bare node proxy over TLS',
    'bare-node-proxy.ts',
    upstreamUrl,
    [],
    {
      TLS_CERT_FILE: certificates.certFile,
      TLS_KEY_FILE: certificates.keyFile,
    },
  );
  const nginx = await startNginx(group, dir, upstreamUrl, certificates);
  const ca = readFileSync(certificates.caFile);
  await waitForEcho(bare.service, `${bare.url}${PATH}`, ca);
  await waitForEcho(nginx.service, `${nginx.url}${PATH}`, ca);
  const started = { gateway, 'bare-node': bare, nginx };
  await sleep(SETTLE_MS);

  const runs = Object.fromEntries(
    TLS_TARGETS.map((t) => [
      t,
      Object.fromEntries(TLS_PROTOCOLS.map((p) => [p, [] as H2loadRun[]])),
    ]),
  ) as Record<TlsTargetName, Record<TlsProtocol, H2loadRun[]>>;
  let logs = 0;
  for (let round = 1; round <= options.rounds; round++) {
    for (const target of TLS_TARGETS) {
      for (const protocol of TLS_PROTOCOLS) {
        const run = await runH2load(
          `${started[target].url}${PATH}`,
          HEADERS,
          {
            protocol,
            ...shapeOf(protocol, options.connections),
            seconds: options.seconds,
            warmupSeconds: options.warmup,
          },
          join(dir, `h2load-${++logs}.log`),
        );
        runs[target][protocol].push(run);
        say(
          `  round ${round}/${options.rounds} ${target.padEnd(7)} ${protocol.padEnd(8)} ${Math.round(run.requestsPerSecond)} req/s, p99 ${run.p99Ms} ms, ${run.failed} failed, ${run.non2xx} non-2xx`,
        );
      }
    }
  }
  await Promise.all([
    group.stopOne(gateway.service),
    group.stopOne(bare.service),
    group.stopOne(nginx.service),
  ]);

  const summaries = Object.fromEntries(
    TLS_TARGETS.map((t) => [
      t,
      Object.fromEntries(
        TLS_PROTOCOLS.map((p) => [p, summarize(runs[t][p], shapeOf(p, options.connections))]),
      ),
    ]),
  ) as Record<TlsTargetName, Record<TlsProtocol, TlsSummary>>;
  const rps = (t: TlsTargetName, p: TlsProtocol): number => summaries[t][p].requestsPerSecond;
  return {
    ...tools,
    targets: DESCRIPTIONS,
    certificate: 'ECDSA P-256 leaf for IP:127.0.0.1, signed by a CA made for the run (openssl)',
    runs: summaries,
    ratios: {
      'gateway/nginx, h2': rps('gateway', 'h2') / rps('nginx', 'h2'),
      'gateway/nginx, http/1.1 over TLS': rps('gateway', 'http/1.1') / rps('nginx', 'http/1.1'),
      'gateway, h2 / http/1.1 over TLS': rps('gateway', 'h2') / rps('gateway', 'http/1.1'),
      'bare-node, h2 / http/1.1 over TLS': rps('bare-node', 'h2') / rps('bare-node', 'http/1.1'),
    },
  };
}
