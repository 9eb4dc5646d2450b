import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError } from './error-response';
import { setConnectionClose } from './http2-compat';

/** The 413 message, whether the length announced it or the streamed body outgrew the limit. */
export const BODY_TOO_LARGE = 'The request body is larger than this route accepts';

/** Answers 413 when the request is already too large to forward, before anything is sent. */
export function rejectOversizedBody(
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
  maxBodyBytes: number,
): boolean {
  const length = req.headers['content-length'];
  if (length === undefined || Number(length) <= maxBodyBytes) return false;
  setConnectionClose(res);
  sendError(res, 413, BODY_TOO_LARGE, requestId);
  return true;
}
