/**
 * How the framework matches paths, so the probes answer exactly where one of its routes
 * would: Express follows the app's `case sensitive routing` and `strict routing`
 * settings; Fastify its `caseSensitive` and `ignoreTrailingSlash` options and the
 * prefix of the context the plugin is registered in.
 *
 * @example
 * ```ts
 * http.matchRoutes({ caseSensitive: false, strict: false });
 * ```
 */
export interface RouteMatching {
  /** A prefix `req.url` still carries (Fastify's plugin prefix). Default `''`. */
  readonly prefix?: string;
  /** Default true. */
  readonly caseSensitive?: boolean;
  /** When false, a trailing slash matches too (`/health/ready/`). Default true. */
  readonly strict?: boolean;
}

/**
 * What a request URL addresses among the routes the HTTP half answers itself.
 *
 * @example
 * ```ts
 * const kind: ProbeKind = 'ready';
 * ```
 */
export type ProbeKind = 'ready' | 'live' | 'metrics';

/**
 * A matcher of request URLs (path and query) against the probe and metrics paths. Most
 * requests are not probes: they are ruled out on the length of their path, before
 * anything is allocated.
 */
export function probeMatcher(
  paths: { readonly ready: string; readonly live: string; readonly metrics: string | null },
  matching: RouteMatching = {},
): (url: string) => ProbeKind | null {
  const caseSensitive = matching.caseSensitive ?? true;
  const strict = matching.strict ?? true;
  const prefix = matching.prefix === '/' ? '' : (matching.prefix ?? '');
  const norm = (path: string) => {
    let p = caseSensitive ? path : path.toLowerCase();
    if (!strict && p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
    return p;
  };
  const table: [string, ProbeKind][] = [
    [norm(prefix + paths.ready), 'ready'],
    [norm(prefix + paths.live), 'live'],
  ];
  if (paths.metrics !== null) table.push([norm(prefix + paths.metrics), 'metrics']);
  const lengths = table.map(([p]) => p.length);
  const min = Math.min(...lengths);
  const max = Math.max(...lengths) + (strict ? 0 : 1);
  return (url) => {
    if (url.length < min) return null;
    const q = url.indexOf('?');
    const length = q < 0 ? url.length : q;
    if (length < min || length > max) return null;
    const p = norm(q < 0 ? url : url.slice(0, q));
    for (const [path, kind] of table) if (p === path) return kind;
    return null;
  };
}
