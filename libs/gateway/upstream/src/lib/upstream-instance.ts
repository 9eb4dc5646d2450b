import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { RequestHandler } from 'http-proxy-middleware';
import { Pool } from 'undici';
import type { ExchangeEndpoint } from './exchange';
import { createHttpProxy } from './http-proxy.engine';

/** What the background checker last concluded about an instance. */
export type InstanceHealth = 'up' | 'down' | 'unknown';

/** How passive outlier detection treats failures (Envoy's consecutive-5xx detector). */
export interface OutlierPolicy {
  /** Connect errors or 5xx in a row that eject an instance; 0 = never. */
  readonly consecutiveFailures: number;
  /** The first ejection's length; each further ejection in a row doubles it, up to 30 times. */
  readonly ejectionMs: number;
}

const MAX_EJECTION_FACTOR = 30;

/** Where an instance's requests in flight are added up with its siblings' (its service). */
export interface InFlightTotal {
  inFlight: number;
}

/**
 * One instance of a service: its own keep-alive pools (undici's for most requests, `node:http`'s
 * for chunked uploads, WebSockets and health checks), its streaming proxy, built once, and what
 * the active checker and the passive detector know of it.
 */
export class UpstreamInstance implements ExchangeEndpoint {
  /** `host[:port]`, the Host header the instance receives. */
  readonly host: string;
  readonly agent: HttpAgent;
  readonly pool: Pool;
  readonly proxy: RequestHandler;
  inFlight = 0;
  health: InstanceHealth = 'unknown';
  /** Active checks in a row with the same result: positive for successes, negative for failures. */
  private streak = 0;
  private consecutiveFailures = 0;
  private ejections = 0;
  /** When the ejection ends (0: not ejected). After it, one probe request decides (half-open). */
  ejectedUntil = 0;
  private probing = false;
  private retired = false;

  constructor(
    readonly url: URL,
    /** Its place among its service's instances, as `/health` shows it. */
    public index: number,
    idleTimeoutMs: number,
    private readonly outlier: OutlierPolicy,
    private readonly total: InFlightTotal,
    /** The Host it receives, when it is reached by address: the name that resolved to it. */
    host = url.host,
  ) {
    this.host = host;
    const options = {
      keepAlive: true,
      maxFreeSockets: 256,
      scheduling: 'lifo' as const,
      // A pooled socket is dropped before the upstream would close it (node#52649); Node also
      // honours an upstream's `Keep-Alive: timeout=` hint, minus a second.
      timeout: idleTimeoutMs,
    };
    this.agent = url.protocol === 'https:' ? new HttpsAgent(options) : new HttpAgent(options);
    this.pool = new Pool(url.origin, {
      // Like the agent: an upstream's `Keep-Alive: timeout=` hint minus a second, never longer.
      keepAliveTimeout: idleTimeoutMs,
      keepAliveMaxTimeout: idleTimeoutMs,
      keepAliveTimeoutThreshold: 1000,
      // The exchange's own timers limit the wait for the head and the body's idle time.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    this.proxy = createHttpProxy(url, this.agent);
  }

  /** Connect errors, resets, timeouts and 5xx in a row, as the status page shows them. */
  get failuresInARow(): number {
    return this.consecutiveFailures;
  }

  /** May this instance take a request now? An ended ejection admits one probe at a time. */
  isAvailable(now: number): boolean {
    if (this.health === 'down' || this.retired) return false;
    if (this.ejectedUntil === 0) return true;
    return now >= this.ejectedUntil && !this.probing;
  }

  /** Takes a request: counts it in flight, and makes it the probe of an ended ejection. */
  acquire(): void {
    this.inFlight++;
    this.total.inFlight++;
    if (this.ejectedUntil !== 0) this.probing = true;
  }

  /** The request is over; a retired pool closes with its last request. */
  release(): void {
    this.inFlight--;
    this.total.inFlight--;
    // A probe that ended without a verdict (the client left) lets the next one through.
    this.probing = false;
    if (this.retired && this.inFlight === 0) this.close();
  }

  /** The upstream answered below 500: it is fine, and an ejected one is back. */
  reportSuccess(): boolean {
    this.consecutiveFailures = 0;
    if (this.ejectedUntil === 0) return false;
    this.ejectedUntil = 0;
    this.ejections = 0;
    this.probing = false;
    return true;
  }

  /** A connect error, reset, timeout or 5xx. Returns true when it ejects the instance. */
  reportFailure(now: number): boolean {
    this.consecutiveFailures++;
    const wasProbe = this.probing;
    this.probing = false;
    const threshold = this.outlier.consecutiveFailures;
    if (
      !wasProbe &&
      (threshold === 0 || this.consecutiveFailures < threshold || this.ejectedUntil !== 0)
    ) {
      return false;
    }
    this.ejections++;
    const factor = Math.min(2 ** (this.ejections - 1), MAX_EJECTION_FACTOR);
    this.ejectedUntil = now + this.outlier.ejectionMs * factor;
    return true;
  }

  /** One active check's result, with Envoy-style thresholds. Returns true when health changed. */
  recordCheck(ok: boolean, healthyThreshold: number, unhealthyThreshold: number): boolean {
    this.streak = ok ? Math.max(this.streak, 0) + 1 : Math.min(this.streak, 0) - 1;
    const next: InstanceHealth =
      ok && (this.health !== 'down' || this.streak >= healthyThreshold)
        ? 'up'
        : !ok && (this.health === 'down' || -this.streak >= unhealthyThreshold)
          ? 'down'
          : this.health;
    // A first success makes an unknown instance up at once; a failure needs the threshold.
    const changed = next !== this.health;
    this.health = next;
    return changed;
  }

  /** Out of the route table (hot reload): no new requests; the pool closes when idle. */
  retire(): void {
    this.retired = true;
    if (this.inFlight === 0) this.close();
  }

  /** Closes both pools' connections. */
  close(): void {
    this.agent.destroy();
    void this.pool.destroy();
  }
}
