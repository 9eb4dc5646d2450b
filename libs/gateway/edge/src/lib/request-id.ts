import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

const SANE_REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * The request's id: the client's `X-Request-Id` when it is a sane token (at most 128 of
 * `[A-Za-z0-9._-]`), else a new UUID. SECURITY: anything else could inject into logs or headers.
 */
export function resolveRequestId(header: string | string[] | undefined): string {
  return typeof header === 'string' && SANE_REQUEST_ID.test(header) ? header : randomUUID();
}

/** Gives the request its id, on the request (for the upstream) and on the response. */
export function assignRequestId(req: IncomingMessage, res: ServerResponse): string {
  const id = resolveRequestId(req.headers['x-request-id']);
  req.headers['x-request-id'] = id;
  res.setHeader('x-request-id', id);
  return id;
}
