// An OTLP/HTTP trace receiver that discards what it gets, for the tracing phase of the
// benchmark: it reads each export whole and answers 200 as a collector does, so the gateway's
// exporter does its full work while nothing downstream costs time. Run as a child process;
// `GET /stats` tells how many exports and bytes arrived.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

let exports = 0;
let bytes = 0;

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ exports, bytes }));
    return;
  }
  req.on('data', (chunk: Buffer) => (bytes += chunk.length));
  req.on('end', () => {
    exports++;
    const json = String(req.headers['content-type']).startsWith('application/json');
    res
      .writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' })
      .end(json ? '{}' : undefined);
  });
});

process.once('SIGTERM', () => process.exit(0));

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`otlp sink listening on http://127.0.0.1:${port}\n`);
});
