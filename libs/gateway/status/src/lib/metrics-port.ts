import type { RequestListener, ServerResponse } from 'node:http';
import { buildStatusPage } from './status-page';
import type { StatusSampler } from './status-sampler';

/** What the metrics port serves `/metrics` from: one registry, or the workers' added up. */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

function notFound(res: ServerResponse): void {
  res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
}

/**
 * The metrics port's requests: Prometheus `/metrics`, the status page `/status`, its state
 * `/status.json` and its event stream `/status/events`. None of them goes through the
 * gateway's pipeline, so none counts as traffic.
 */
export function createMetricsPortListener(
  source: MetricsSource,
  sampler: StatusSampler,
): RequestListener {
  const page = buildStatusPage();
  return (req, res) => {
    const path = (req.url ?? '').split('?', 1)[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return notFound(res);
    switch (path) {
      case '/metrics':
        source.metrics().then(
          (text) => res.writeHead(200, { 'content-type': source.contentType }).end(text),
          (err: Error) =>
            res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
        );
        return;
      case '/status':
        res
          .writeHead(200, {
            'content-type': 'text/html; charset=utf-8',
            'content-security-policy': page.csp,
            'cache-control': 'no-store',
            'x-content-type-options': 'nosniff',
            'referrer-policy': 'no-referrer',
          })
          .end(page.html);
        return;
      case '/status.json': {
        const snapshot = sampler.snapshot();
        if (!snapshot) {
          // Only in the first second after start-up, before the first sample.
          res
            .writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' })
            .end('{"error":"no sample yet"}\n');
          return;
        }
        res
          .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
          .end(JSON.stringify(snapshot));
        return;
      }
      case '/status/events': {
        res.writeHead(200, {
          'content-type': 'text/event-stream',
          'cache-control': 'no-store',
          'x-accel-buffering': 'no',
        });
        if (req.method === 'HEAD') return void res.end();
        res.write('retry: 2000\n\n');
        const snapshot = sampler.snapshot();
        if (snapshot) res.write(`event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`);
        let sentSnapshot = snapshot !== undefined;
        const unsubscribe = sampler.subscribe((tick) => {
          if (sentSnapshot) {
            res.write(`event: tick\ndata: ${JSON.stringify(tick)}\n\n`);
          } else {
            sentSnapshot = true;
            res.write(`event: snapshot\ndata: ${JSON.stringify(sampler.snapshot())}\n\n`);
          }
        });
        res.on('close', unsubscribe);
        return;
      }
      default:
        notFound(res);
    }
  };
}
