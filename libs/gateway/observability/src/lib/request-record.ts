import type { ServerResponse } from 'node:http';
import type { Span } from '@opentelemetry/api';

/** What the gateway learns about one request on its way, read when the response closes. */
export interface RequestRecord {
  /** `performance.now()` when the request reached the gateway. */
  readonly startedAt: number;
  readonly bytesReadBefore: number;
  readonly bytesWrittenBefore: number;
  /** The route's prefix; `gateway` for the gateway's own endpoints. */
  route: string;
  service: string | undefined;
  clientIp: string | undefined;
  /** When the request went to the upstream, and when its response head came back. */
  upstreamSentAt: number | undefined;
  upstreamFirstByteAt: number | undefined;
  /** A failure of the upstream exchange, from the error table (refused, reset, timeout…). */
  upstreamFailure: string | undefined;
  /** The index of the instance that failed, when one did. */
  upstreamInstance: number | undefined;
  /** Tries on another instance after a connect failure. */
  retries: number;
  /** The SERVER span of a traced request (tracing on, a proxied route). */
  span: Span | undefined;
  /** The CLIENT span of the try under way, until it fails or the response ends. */
  upstreamSpan: Span | undefined;
}

const RECORD = Symbol('helix.record');
type Tagged = ServerResponse & { [RECORD]?: RequestRecord };

export function attachRecord(res: ServerResponse, record: RequestRecord): void {
  (res as Tagged)[RECORD] = record;
}

export function recordOf(res: ServerResponse): RequestRecord | undefined {
  return (res as Tagged)[RECORD];
}
