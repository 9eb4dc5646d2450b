import type { IncomingMessage, ServerResponse } from 'node:http';

export interface CorsOptions {
  /** `*`, or the exact origins that may read responses. */
  readonly origin: '*' | readonly string[];
  /** Methods a preflight may allow; undefined allows the one the preflight asks for. */
  readonly methods: readonly string[] | undefined;
  /** Request headers a preflight may allow; undefined allows those the preflight asks for. */
  readonly allowedHeaders: readonly string[] | undefined;
  readonly exposedHeaders: readonly string[] | undefined;
  /** Only with a list of origins: browsers refuse credentials with `*`. */
  readonly credentials: boolean;
  readonly maxAgeSeconds: number;
}

/**
 * The gateway owns CORS: it answers preflights itself (never forwarding them) and sets the
 * CORS headers of every response, replacing any an upstream sets. Header values are built once.
 */
export class CorsPolicy {
  private readonly anyOrigin: boolean;
  private readonly origins: ReadonlySet<string>;
  private readonly methods: string | undefined;
  private readonly allowedHeaders: string | undefined;
  private readonly exposedHeaders: string | undefined;
  private readonly maxAge: string;
  private readonly preflightVary: string;

  constructor(private readonly options: CorsOptions) {
    this.anyOrigin = options.origin === '*';
    this.origins = new Set(options.origin === '*' ? [] : options.origin);
    this.methods = options.methods?.join(', ');
    this.allowedHeaders = options.allowedHeaders?.join(', ');
    this.exposedHeaders = options.exposedHeaders?.join(', ');
    this.maxAge = String(options.maxAgeSeconds);
    const vary = this.anyOrigin ? [] : ['Origin'];
    if (!this.methods) vary.push('Access-Control-Request-Method');
    if (!this.allowedHeaders) vary.push('Access-Control-Request-Headers');
    this.preflightVary = vary.join(', ');
  }

  /**
   * Answers a CORS preflight with 204 and returns true; for any other request, sets the CORS
   * headers of its response and returns false.
   */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const origin = req.headers.origin;
    if (
      req.method === 'OPTIONS' &&
      origin !== undefined &&
      req.headers['access-control-request-method'] !== undefined
    ) {
      this.answerPreflight(req, res, origin);
      return true;
    }
    if (this.anyOrigin) {
      res.setHeader('access-control-allow-origin', '*');
      if (this.exposedHeaders && origin !== undefined)
        res.setHeader('access-control-expose-headers', this.exposedHeaders);
      return false;
    }
    // The answer depends on Origin whether or not it is allowed, so caches must know.
    res.setHeader('vary', 'Origin');
    if (origin !== undefined && this.origins.has(origin)) {
      res.setHeader('access-control-allow-origin', origin);
      if (this.options.credentials) res.setHeader('access-control-allow-credentials', 'true');
      if (this.exposedHeaders) res.setHeader('access-control-expose-headers', this.exposedHeaders);
    }
    return false;
  }

  private answerPreflight(req: IncomingMessage, res: ServerResponse, origin: string): void {
    if (this.preflightVary) res.setHeader('vary', this.preflightVary);
    // SECURITY: exact match only; `null`, another scheme or port, or a suffix such as
    // https://app.example.com.evil.io is not in the set and gets no CORS headers.
    if (this.anyOrigin || this.origins.has(origin)) {
      res.setHeader('access-control-allow-origin', this.anyOrigin ? '*' : origin);
      if (this.options.credentials && !this.anyOrigin)
        res.setHeader('access-control-allow-credentials', 'true');
      res.setHeader(
        'access-control-allow-methods',
        this.methods ?? String(req.headers['access-control-request-method']),
      );
      const requested = req.headers['access-control-request-headers'];
      const headers = this.allowedHeaders ?? requested;
      if (headers) res.setHeader('access-control-allow-headers', headers);
      res.setHeader('access-control-max-age', this.maxAge);
    }
    res.setHeader('content-length', '0');
    res.statusCode = 204;
    res.end();
  }
}
