// Baseline: the least a Node reverse proxy can do. Keep-alive to the upstream, both bodies
// piped, no header policy. Run as a child process; UPSTREAM_URL names the upstream. With
// TLS_CERT_FILE and TLS_KEY_FILE it listens as the gateway does over TLS: Node's HTTP/2 server
// with HTTP/1.1 allowed by ALPN, answering both through the compatibility API, so the TLS runs
// show what Node's HTTP/2 costs against its HTTP/1.1 without any of the gateway's work.
import { readFileSync } from 'node:fs';
import http, {
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

const upstream = new URL(process.env['UPSTREAM_URL'] ?? '');
const agent = new http.Agent({ keepAlive: true });
const certFile = process.env['TLS_CERT_FILE'];
const keyFile = process.env['TLS_KEY_FILE'];

/** Fields HTTP/2 forbids (RFC 9113 §8.2.2); Node throws on an answer that carries one. */
const CONNECTION_SPECIFIC = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
];

/** The request's fields for the upstream: over HTTP/2 without its pseudo-headers. */
function upstreamHeaders(req: IncomingMessage): IncomingHttpHeaders {
  const headers: IncomingHttpHeaders = { host: upstream.host };
  for (const name in req.headers) {
    if (name.charCodeAt(0) !== 0x3a && name !== 'host') headers[name] = req.headers[name];
  }
  return headers;
}

function proxy(req: IncomingMessage, res: ServerResponse): void {
  const headers =
    req.httpVersionMajor === 2 ? upstreamHeaders(req) : { ...req.headers, host: upstream.host };
  const options = { host: upstream.hostname, port: upstream.port, path: req.url, headers, agent };
  const forward = http.request({ ...options, method: req.method }, (answer) => {
    if (req.httpVersionMajor === 2)
      for (const name of CONNECTION_SPECIFIC) delete answer.headers[name];
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  forward.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
  res.on('close', () => res.writableFinished || forward.destroy());
  req.pipe(forward);
}

const server =
  certFile && keyFile
    ? http2.createSecureServer(
        { cert: readFileSync(certFile), key: readFileSync(keyFile), allowHTTP1: true },
        proxy as unknown as Parameters<typeof http2.createSecureServer>[1],
      )
    : http.createServer(proxy);

// An orderly exit on the benchmark's SIGTERM, so `node --cpu-prof` writes its profile.
process.once('SIGTERM', () => process.exit(0));

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  const scheme = certFile && keyFile ? 'https' : 'http';
  process.stdout.write(`bare node proxy listening on ${scheme}://127.0.0.1:${port}\n`);
});
