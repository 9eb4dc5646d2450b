/**
 * The URL with the values of the named query keys replaced by `[REDACTED]`, so tokens in
 * query strings never reach a log line. Keys compare case-insensitively; the rest is untouched.
 */
export function redactQuery(url: string, keys: ReadonlySet<string>): string {
  const q = url.indexOf('?');
  if (q === -1 || keys.size === 0) return url;
  const pairs = url.slice(q + 1).split('&');
  for (let i = 0; i < pairs.length; i++) {
    const eq = pairs[i].indexOf('=');
    const rawKey = eq === -1 ? pairs[i] : pairs[i].slice(0, eq);
    let key: string;
    try {
      key = decodeURIComponent(rawKey.replace(/\+/g, ' ')).toLowerCase();
    } catch {
      key = rawKey.toLowerCase();
    }
    if (eq !== -1 && keys.has(key)) pairs[i] = `${rawKey}=[REDACTED]`;
  }
  return `${url.slice(0, q)}?${pairs.join('&')}`;
}
