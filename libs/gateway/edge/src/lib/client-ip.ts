import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';
import type { TrustProxy } from '@helix/gateway-config';

/**
 * Compiles TRUST_PROXY into a function giving a request's client address, with Express's
 * `trust proxy` semantics (proxy-addr, the library Express uses). SECURITY: X-Forwarded-For
 * counts only through trusted hops, so a client cannot rotate its way out of a rate limit.
 */
export function createClientIpResolver(trust: TrustProxy): (req: IncomingMessage) => string {
  if (trust === false) return (req) => req.socket.remoteAddress ?? 'unknown';
  const trusted =
    trust === true
      ? () => true
      : typeof trust === 'number'
        ? (_address: string, hop: number) => hop < trust
        : proxyaddr.compile([...trust]);
  return (req) => proxyaddr(req, trusted);
}
