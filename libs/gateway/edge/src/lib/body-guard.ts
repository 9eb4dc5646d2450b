import type { IncomingMessage, ServerResponse } from 'node:http';
import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '@helix/gateway-config';
import { isHttp2, streamOf } from './http2-compat';

/** The 408 message of a request body that stalled or trickled. */
export const BODY_TOO_SLOW = 'The request body was not received in time';

/** How often the watched bodies are looked at; a limit is enforced to within this. */
const SWEEP_MS = 250;

/** One request body under watch. */
interface Watch {
  readonly req: IncomingMessage;
  readonly onCut: () => void;
  /** The byte count when the watch began: what came since is the body. */
  readonly startRead: number;
  lastRead: number;
  lastSweep: number;
  /** Since when the client has sent nothing while the gateway waited for it. */
  idleSince: number;
  /** Time the gateway spent waiting for the client (not for the upstream to take the body). */
  waitedMs: number;
}

/**
 * Guards request bodies by how they move, not by their total time, so a 1 GiB upload at any
 * honest rate passes while slowloris-on-the-body and R.U.D.Y.-style trickles are cut with 408:
 * - idle: nothing received for `BODY_IDLE_TIMEOUT_MS` (nginx's `client_body_timeout`);
 * - rate: after `BODY_MIN_RATE_GRACE_MS`, each further second needs
 *   `BODY_MIN_RATE_BYTES_PER_S` bytes (Apache `mod_reqtimeout`'s `body=…,MinRate=…`).
 *
 * Only time the gateway spends waiting for the client counts: while the upstream takes the
 * body slower than the client sends it, the unread bytes sit in the request's buffer
 * (`readableLength` > 0) and the client is not to blame. Progress is read off the socket's
 * byte count by one sweep for every body, so a chunk costs nothing on the way through. Over
 * HTTP/2, each stream's own idle timer serves instead (watchStream).
 */
@Injectable()
export class BodyGuard implements OnModuleDestroy {
  private readonly idleMs: number;
  private readonly minRate: number;
  private readonly graceMs: number;
  private readonly watches = new Set<Watch>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(@Inject(GATEWAY_CONFIG) config: GatewayConfig) {
    this.idleMs = config.BODY_IDLE_TIMEOUT_MS;
    this.minRate = config.BODY_MIN_RATE_BYTES_PER_S;
    this.graceMs = config.BODY_MIN_RATE_GRACE_MS;
  }

  /** Watches the body of `req` until it ends or `res` closes; `onCut` refuses the request. */
  watch(req: IncomingMessage, res: ServerResponse, onCut: () => void): void {
    if (this.idleMs === 0 && this.minRate === 0) return;
    const now = Date.now();
    if (isHttp2(req)) {
      this.watchStream(req, res, onCut);
      return;
    }
    const read = req.socket.bytesRead;
    const watch: Watch = {
      req,
      onCut,
      startRead: read,
      lastRead: read,
      lastSweep: now,
      idleSince: now,
      waitedMs: 0,
    };
    this.watches.add(watch);
    const end = () => this.watches.delete(watch);
    req.once('end', end);
    res.once('close', end);
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.sweeper);
  }

  /**
   * An HTTP/2 body, by its stream's own inactivity timer: the connection's byte count is shared
   * by every stream on it (and Node's HTTP/2 socket proxy has none), and a listener of the
   * stream's data would take it from the compatibility request. A stream with no frame for
   * BODY_IDLE_TIMEOUT_MS while the gateway waits for its client (nothing unread) is cut; the
   * minimum rate is not enforced over HTTP/2, where flow control and the session's limits
   * bound what a trickling stream holds.
   */
  private watchStream(req: IncomingMessage, res: ServerResponse, onCut: () => void): void {
    if (this.idleMs === 0) return;
    const stream = streamOf(req);
    const onIdle = () => {
      if (req.readableEnded || res.writableEnded) return;
      // Unread bytes: the upstream takes the body slower than the client sends it.
      if (req.readableLength > 0) stream.setTimeout(this.idleMs);
      else onCut();
    };
    stream.on('timeout', onIdle);
    stream.setTimeout(this.idleMs);
    const end = () => {
      stream.setTimeout(0);
      stream.off('timeout', onIdle);
    };
    req.once('end', end);
    res.once('close', end);
  }

  private sweep(): void {
    if (this.watches.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
      return;
    }
    const now = Date.now();
    for (const watch of this.watches) {
      if (this.tooSlow(watch, now)) {
        this.watches.delete(watch);
        watch.onCut();
      }
    }
  }

  private tooSlow(watch: Watch, now: number): boolean {
    const { req } = watch;
    const read = req.socket.bytesRead;
    const progressed = read !== watch.lastRead;
    const waiting = req.readableLength === 0;
    if (progressed || waiting) watch.waitedMs += now - watch.lastSweep;
    if (progressed || !waiting) watch.idleSince = now;
    watch.lastRead = read;
    watch.lastSweep = now;
    if (this.idleMs > 0 && now - watch.idleSince >= this.idleMs) return true;
    if (this.minRate === 0) return false;
    const allowedMs = this.graceMs + ((read - watch.startRead) * 1000) / this.minRate;
    return watch.waitedMs > allowedMs;
  }
}
