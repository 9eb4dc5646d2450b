import type { IncomingHttpHeaders } from 'node:http';

// What Node's IncomingMessage does with a repeated field (`matchKnownFields` in _http_incoming):
// these keep their first value, `set-cookie` becomes a list, and any other is joined with ", ".
const FIRST_WINS = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

function latin1(field: Buffer | string): string {
  return typeof field === 'string' ? field : field.toString('latin1');
}

/**
 * undici's raw header list (name, value, name, value… as Buffers) as the header object Node
 * gives for the same message, so the header policies read one shape whichever engine carried
 * the exchange.
 */
export function headersFromRaw(raw: readonly (Buffer | string)[]): IncomingHttpHeaders {
  const headers: IncomingHttpHeaders = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = latin1(raw[i]).toLowerCase();
    const value = latin1(raw[i + 1]);
    // SECURITY: own fields only; a field named `constructor` or `toString` is not one seen yet.
    const seen = Object.hasOwn(headers, name) ? headers[name] : undefined;
    if (seen === undefined) {
      headers[name] = name === 'set-cookie' ? [value] : value;
    } else if (Array.isArray(seen)) {
      seen.push(value);
    } else if (!FIRST_WINS.has(name)) {
      headers[name] = `${seen}, ${value}`;
    }
  }
  return headers;
}
