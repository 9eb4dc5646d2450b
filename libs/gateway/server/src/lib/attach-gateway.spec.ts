import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rawExchange } from '@helix/shared-testing';
import { answerClientError } from './attach-gateway';

describe('answerClientError', () => {
  let server: Server;
  let port: number;

  beforeAll(async () => {
    server = createServer({ maxHeaderSize: 1024 }, (_req, res) => res.end('ok'));
    server.on('clientError', answerClientError);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function bodyOf(response: string): Record<string, unknown> {
    return JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
  }

  it('answers oversized headers with a JSON 431 and closes the connection', async () => {
    const response = await rawExchange(
      port,
      `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(2048)}\r\n\r\n`,
    );
    expect(response).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    expect(bodyOf(response)).toMatchObject({
      statusCode: 431,
      error: 'Request Header Fields Too Large',
      message: 'The request headers are too large',
    });
  });

  it('answers Content-Length with Transfer-Encoding (request smuggling) with a JSON 400', async () => {
    const response = await rawExchange(
      port,
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    );
    expect(response).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(bodyOf(response)).toMatchObject({
      statusCode: 400,
      message: 'The request is malformed',
    });
  });

  it('writes nothing on a connection that has already answered', async () => {
    // A valid request answered, then garbage on the same connection: no second status line.
    const response = await rawExchange(
      port,
      'GET / HTTP/1.1\r\nHost: x\r\n\r\n\x01\x02 bad\r\n\r\n',
    );
    expect(response.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(response).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  });
});
