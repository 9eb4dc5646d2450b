/** A request target the gateway will route: the normalised path, and the URL to forward. */
export interface RequestTarget {
  /** The path, dot segments resolved and slashes merged; what the route table is matched on. */
  readonly path: string;
  /** The normalised path plus the untouched query: what the upstream receives. */
  readonly url: string;
}

export interface RejectedTarget {
  readonly rejected: string;
}

const NEEDS_WORK = /[%\\#]|\/\.|\/\//;
// SECURITY: an encoded dot, slash, backslash or NUL (also double-encoded) would route one way
// here and another way once an upstream decodes it, so such a path is refused, not decoded.
const AMBIGUOUS_ENCODING = /%(?:2e|2f|5c|00)|%25(?:2e|2f|5c|00|25)/i;
const BAD_PERCENT = /%(?![0-9a-f]{2})/i;
const ABSOLUTE_FORM = /^https?:\/\/[^/?#]*/i;

function reject(rejected: string): RejectedTarget {
  return { rejected };
}

/** RFC 3986 §5.2.4 remove_dot_segments, with empty segments merged as nginx's merge_slashes does. */
function resolveSegments(path: string): string | RejectedTarget {
  const out: string[] = [];
  const segments = path.split('/');
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i];
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      out.pop();
      continue;
    }
    // SECURITY: `..;/` is `../` to Tomcat and Jetty (path parameters), so it cannot pass.
    if (segment.startsWith('.;') || segment.startsWith('..;')) {
      return reject('dot segment with path parameters');
    }
    out.push(segment);
  }
  const last = segments[segments.length - 1];
  const trailing = out.length > 0 && (last === '' || last === '.' || last === '..');
  return `/${out.join('/')}${trailing ? '/' : ''}`;
}

/**
 * Normalises a request target before routing (CONTRACT.md "Hard edges"). Origin-form is
 * expected; absolute-form is reduced to its path and query, so its authority can never choose
 * the upstream. Returns a RejectedTarget for anything that would route differently once decoded.
 */
export function normalizeRequestTarget(raw: string): RequestTarget | RejectedTarget {
  let url = raw;
  if (url.charCodeAt(0) !== 47 /* / */) {
    const absolute = ABSOLUTE_FORM.exec(url);
    if (!absolute) return reject('request target is not a path');
    url = url.slice(absolute[0].length);
    if (url === '' || url.charCodeAt(0) === 63 /* ? */) url = `/${url}`;
  }
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  if (!NEEDS_WORK.test(path)) return { path, url };

  if (path.includes('\\')) return reject('backslash in path');
  if (path.includes('#')) return reject('fragment in request target');
  if (AMBIGUOUS_ENCODING.test(path)) return reject('encoded dot, slash, backslash or NUL in path');
  if (BAD_PERCENT.test(path)) return reject('malformed percent-encoding in path');
  if (path.startsWith('//')) return reject('path starts with //');
  const resolved = resolveSegments(path);
  if (typeof resolved !== 'string') return resolved;
  return { path: resolved, url: q === -1 ? resolved : resolved + url.slice(q) };
}

export function isRejectedTarget(target: RequestTarget | RejectedTarget): target is RejectedTarget {
  return 'rejected' in target;
}
