/** Anything routable by path prefix. */
export interface PrefixRoute {
  readonly prefix: string;
}

/**
 * Compiles a route table into a matcher, once at boot. A prefix matches on a segment
 * boundary (`/api/auth` takes `/api/auth` and `/api/auth/x`, never `/api/authx`); the longest
 * prefix wins, so nested routes such as `/api/files/public` shadow their parent.
 */
export function createRouteMatcher<R extends PrefixRoute>(
  routes: readonly R[],
): (path: string) => R | undefined {
  const ordered = [...routes].sort((a, b) => b.prefix.length - a.prefix.length);
  const count = ordered.length;
  return (path) => {
    for (let i = 0; i < count; i++) {
      const route = ordered[i];
      const prefix = route.prefix;
      if (
        path.startsWith(prefix) &&
        (path.length === prefix.length || path.charCodeAt(prefix.length) === 47) /* / */
      ) {
        return route;
      }
    }
    return undefined;
  };
}
