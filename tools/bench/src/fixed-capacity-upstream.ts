// The overload scenario's upstream: a backend with a fixed number of workers, each busy for a
// fixed service time per request, as a thread-pooled application server is. Requests beyond
// its workers wait in its queue, so past its capacity (workers ÷ service time) latency grows
// without bound unless something in front refuses the excess. Health checks skip the queue, as
// a management port would. Run as a child process; prints its URL once it listens.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const workers = Number(process.env['UPSTREAM_WORKERS']);
const serviceTimeMs = Number(process.env['SERVICE_TIME_MS']);
const queue: http.ServerResponse[] = [];
let busy = 0;

function serve(res: http.ServerResponse): void {
  busy += 1;
  setTimeout(() => {
    busy -= 1;
    if (!res.destroyed) res.writeHead(200, { 'content-type': 'text/plain' }).end('done\n');
    const next = queue.shift();
    if (next) serve(next);
  }, serviceTimeMs);
}

const server = http.createServer((req, res) => {
  req.resume();
  if (req.url?.endsWith('/health')) {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
  } else if (busy < workers) {
    serve(res);
  } else {
    queue.push(res);
  }
});

process.once('SIGTERM', () => process.exit(0));

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(
    `fixed-capacity upstream (${workers} workers × ${serviceTimeMs} ms) listening on http://127.0.0.1:${port}\n`,
  );
});
