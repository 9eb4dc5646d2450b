import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadGatewayConfig } from '@helix/gateway-config';
import { BodyGuard } from './body-guard';

/**
 * A real server whose handler puts every request body under the guard, and either reads the
 * body (`read`) or leaves it unread, as a slow upstream leaves the gateway unable to pass it on.
 */
async function startGuarded(read: boolean, env: Record<string, string>) {
  const guard = new BodyGuard(loadGatewayConfig(env));
  const cut: string[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    guard.watch(req, res, () => {
      cut.push(req.url ?? '');
      res.writeHead(408, { connection: 'close' }).end();
    });
    if (read) req.resume();
    req.on('end', () => res.end('done'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    cut,
    port,
    close: async () => {
      guard.onModuleDestroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Sends `first` bytes at once and then nothing for `holdMs`; resolves with the status, if any. */
function stallingUpload(port: number, first: number, holdMs: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = request({ port, host: '127.0.0.1', method: 'POST', path: '/stall', agent: false });
    req.setHeader('content-length', 100 * 1024 * 1024);
    req.on('response', (res) => {
      resolve(res.statusCode);
      res.resume();
    });
    req.on('error', () => resolve(undefined));
    req.write(Buffer.alloc(first));
    setTimeout(() => {
      req.destroy();
      resolve(undefined);
    }, holdMs);
  });
}

describe('BodyGuard', () => {
  const env = { BODY_IDLE_TIMEOUT_MS: '500', BODY_MIN_RATE_BYTES_PER_S: '0' };

  it('cuts a body whose client stops sending while the server waits for it', async () => {
    const server = await startGuarded(true, env);
    try {
      expect(await stallingUpload(server.port, 1024, 3000)).toBe(408);
      expect(server.cut).toEqual(['/stall']);
    } finally {
      await server.close();
    }
  });

  it('does not blame the client while the server is the one not reading (backpressure)', async () => {
    const server = await startGuarded(false, env);
    try {
      // 4 MiB cannot all be taken by an unread request: the unread rest waits in its buffer.
      expect(await stallingUpload(server.port, 4 * 1024 * 1024, 1500)).toBeUndefined();
      expect(server.cut).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('lets a body that keeps moving through, and stops watching it at its end', async () => {
    const server = await startGuarded(true, env);
    try {
      const status = await new Promise<number | undefined>((resolve) => {
        const req = request({ port: server.port, host: '127.0.0.1', method: 'POST', agent: false });
        req.setHeader('content-length', 8 * 1024);
        req.on('response', (res) => {
          resolve(res.statusCode);
          res.resume();
        });
        void (async () => {
          for (let i = 0; i < 8; i++) {
            req.write(Buffer.alloc(1024));
            await sleep(200);
          }
          req.end();
        })();
      });
      expect(status).toBe(200);
      await sleep(700);
      expect(server.cut).toEqual([]);
    } finally {
      await server.close();
    }
  });
});
