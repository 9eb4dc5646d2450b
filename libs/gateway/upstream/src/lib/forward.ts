import type { Exchange } from './exchange';
import { dispatchOnHttpProxy } from './http-proxy.engine';
import { dispatchOnUndici } from './undici.engine';

/**
 * Sends the exchange's current try to its instance, on the engine that can carry it: undici
 * for a body of known length (or none), http-proxy for a chunked one.
 */
export function forward(exchange: Exchange): void {
  if (exchange.req.headers['transfer-encoding'] !== undefined) dispatchOnHttpProxy(exchange);
  else dispatchOnUndici(exchange);
}
