import http from 'node:http';

export interface Download {
  status: number;
  /** Body bytes received, as sent on the wire. */
  bytes: number;
  seconds: number;
}

/** GETs `url` and reads the whole body, counting and discarding it. */
export function download(url: string, headers: Record<string, string>): Promise<Download> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.once('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          bytes,
          seconds: (performance.now() - started) / 1000,
        }),
      );
      res.once('error', reject);
    });
    req.once('error', reject);
  });
}
