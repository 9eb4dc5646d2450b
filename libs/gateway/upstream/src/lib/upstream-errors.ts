/**
 * Every way an upstream exchange can fail, with the status the client gets. One table, so
 * the status of a failure is decided in one place (fastify-reply-from's lib/errors.js).
 */
export const UPSTREAM_FAILURES = {
  refused: { status: 502, message: 'The upstream service refused the connection' },
  reset: { status: 502, message: 'The upstream service closed the connection before responding' },
  unresolved: { status: 502, message: 'The upstream service could not be found' },
  unreachable: { status: 502, message: 'The upstream service could not be reached' },
  bad_response: { status: 502, message: 'The upstream service sent an invalid response' },
  failed: { status: 502, message: 'The upstream request failed' },
  timeout: { status: 504, message: 'The upstream service did not respond in time' },
  connect_timeout: { status: 504, message: 'The upstream service could not be reached in time' },
  body_idle: { status: 502, message: 'The upstream service stopped sending its response' },
  unavailable: { status: 503, message: 'No instance of the upstream service is available' },
} as const;

export type UpstreamFailure = keyof typeof UPSTREAM_FAILURES;

const BY_ERRNO: Record<string, UpstreamFailure> = {
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  ECONNABORTED: 'reset',
  ENOTFOUND: 'unresolved',
  EAI_AGAIN: 'unresolved',
  EAI_NONAME: 'unresolved',
  EAI_FAIL: 'unresolved',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  EHOSTDOWN: 'unreachable',
  ENETDOWN: 'unreachable',
  EADDRNOTAVAIL: 'unreachable',
  ETIMEDOUT: 'timeout',
  ESOCKETTIMEDOUT: 'timeout',
  ERR_UPSTREAM_UPGRADE_TIMEOUT: 'timeout',
  ECONNECTTIMEOUT: 'connect_timeout',
  ESTREAMIDLE: 'body_idle',
  // undici's own errors (lib/core/errors.js).
  UND_ERR_SOCKET: 'reset',
  UND_ERR_CONNECT_TIMEOUT: 'connect_timeout',
  UND_ERR_HEADERS_OVERFLOW: 'bad_response',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'bad_response',
  UND_ERR_RES_EXCEEDED_MAX_SIZE: 'bad_response',
};

/** Maps a Node.js or undici error from an upstream exchange to its entry in UPSTREAM_FAILURES. */
export function classifyUpstreamError(err: unknown): UpstreamFailure {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  // undici's parse errors do not always carry an HPE_ code.
  if ((err as Error | undefined)?.name === 'HTTPParserError') return 'bad_response';
  if (typeof code !== 'string') return 'failed';
  // llhttp's parse errors (HPE_*) mean the upstream broke HTTP framing.
  if (code.startsWith('HPE_')) return 'bad_response';
  return BY_ERRNO[code] ?? 'failed';
}
