import { type ServerResponse, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

/** The contract's error body: `{ statusCode, error, message, requestId }`. */
export function errorBody(
  statusCode: number,
  message: string,
  requestId: string,
  extra?: object,
): string {
  return JSON.stringify({
    statusCode,
    error: STATUS_CODES[statusCode] ?? 'Error',
    message,
    requestId,
    ...extra,
  });
}

/** Answers a request with a JSON error, unless an answer has already begun. */
export function sendError(
  res: ServerResponse,
  statusCode: number,
  message: string,
  requestId: string,
  extra?: object,
): void {
  if (res.headersSent || res.destroyed) return;
  const body = errorBody(statusCode, message, requestId, extra);
  res.writeHead(statusCode, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

/** Answers on a raw socket (an upgrade request has no ServerResponse), then closes it. */
export function writeSocketError(
  socket: Duplex,
  statusCode: number,
  message: string,
  requestId: string,
  headers: Readonly<Record<string, string>> = {},
): void {
  if (socket.destroyed || !socket.writable) return;
  const body = errorBody(statusCode, message, requestId);
  let extra = '';
  for (const name in headers) extra += `${name}: ${headers[name]}\r\n`;
  socket.end(
    `HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode]}\r\n` +
      extra +
      'content-type: application/json; charset=utf-8\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      `x-request-id: ${requestId}\r\n` +
      'connection: close\r\n\r\n' +
      body,
  );
}
