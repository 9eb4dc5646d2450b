// Baseline: the least a Node reverse proxy can do. Keep-alive to the upstream, both bodies
// piped, no header policy. Run as a child process; UPSTREAM_URL names the upstream.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const upstream = new URL(process.env['UPSTREAM_URL'] ?? '');
const agent = new http.Agent({ keepAlive: true });

const server = http.createServer((req, res) => {
  const headers = { ...req.headers, host: upstream.host };
  const options = { host: upstream.hostname, port: upstream.port, path: req.url, headers, agent };
  const forward = http.request({ ...options, method: req.method }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  forward.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
  res.on('close', () => res.writableFinished || forward.destroy());
  req.pipe(forward);
});

// An orderly exit on the benchmark's SIGTERM, so `node --cpu-prof` writes its profile.
process.once('SIGTERM', () => process.exit(0));

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`bare node proxy listening on http://127.0.0.1:${port}\n`);
});
