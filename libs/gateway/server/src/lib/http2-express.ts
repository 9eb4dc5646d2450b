import type { RequestListener } from 'node:http';
import type { Express } from 'express';
import { Http2ServerResponse } from 'node:http2';
import { GatewayHttp2Request } from '@helix/gateway-edge';

/** What of an Express app the bridge uses: its prototypes and its `handle`, untyped by Express. */
interface ExpressApp {
  readonly request: object;
  readonly response: object;
  handle(req: unknown, res: unknown): void;
}

/**
 * Express's request and response prototypes rebuilt on another base: Express defines its
 * methods on an object whose prototype is IncomingMessage's (ServerResponse's), and the app's
 * own prototype adds `app` on top of it.
 */
function rebase(appPrototype: object, base: object): object {
  const expressPrototype = Object.getPrototypeOf(appPrototype) as object;
  const rebased = Object.create(base, Object.getOwnPropertyDescriptors(expressPrototype));
  return Object.create(rebased, Object.getOwnPropertyDescriptors(appPrototype)) as object;
}

/**
 * Nest's routes (`/health`, `/info`, the JSON 404) for HTTP/2 requests. Express swaps each
 * request's and response's prototype for its own, built on IncomingMessage and ServerResponse
 * (expressjs/express#3388), and an HTTP/2 compatibility object so swapped loses the getters
 * its fields live in. This runs Express's own `handle` on a view of the app whose prototypes
 * carry the same methods over the server's GatewayHttp2Request and Http2ServerResponse instead: the same
 * router, settings and middleware, with no state switched per request.
 */
export function http2Express(express: Express): RequestListener {
  const app = express as unknown as ExpressApp;
  const view = Object.create(app, {
    request: { value: rebase(app.request, GatewayHttp2Request.prototype) },
    response: { value: rebase(app.response, Http2ServerResponse.prototype) },
  }) as ExpressApp;
  return (req, res) => view.handle(req, res);
}
