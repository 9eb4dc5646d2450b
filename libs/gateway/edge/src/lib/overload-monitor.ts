import { type ELDHistogram, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import {
  Inject,
  Injectable,
  Logger,
  type OnModuleDestroy,
  type OnModuleInit,
} from '@nestjs/common';
import { GATEWAY_CONFIG, type GatewayConfig } from '@helix/gateway-config';

/** The histogram's own timer: its intervals are this long when the loop is idle. */
const RESOLUTION_MS = 10;
const SAMPLE_MS = 250;
/** Hysteresis: once overloaded, the delay must stay under the limit this long to recover. */
const RECOVERY_MS = 1000;

/**
 * Process overload, judged by the event loop's delay (Envoy's overload manager,
 * `@fastify/under-pressure`): while it exceeds `OVERLOAD_MAX_EVENT_LOOP_DELAY_MS`, new proxied
 * requests are shed with 503 and `/health` says so, while `/heartbeat` keeps answering.
 *
 * libuv's own timer feeds the histogram and a sampler reads it every 250 ms, off the request
 * path: a request only reads `overloaded`. A sample is the mean delay of the histogram's
 * timer beyond its resolution, or the sampler's own lateness when the loop was too busy to
 * run the histogram's timer at all. Each worker judges its own event loop.
 */
@Injectable()
export class OverloadMonitor implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(OverloadMonitor.name);
  private readonly maxDelayMs: number;
  private histogram: ELDHistogram | undefined;
  private sampler: NodeJS.Timeout | undefined;
  private lastSampleAt = 0;
  private lastOverAt = 0;
  /** True while new proxied requests are shed. */
  overloaded = false;
  /** The last sample, in ms. */
  delayMs = 0;

  constructor(@Inject(GATEWAY_CONFIG) config: GatewayConfig) {
    this.maxDelayMs = config.OVERLOAD_MAX_EVENT_LOOP_DELAY_MS;
  }

  onModuleInit(): void {
    if (this.maxDelayMs === 0) return;
    this.histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.histogram.enable();
    this.lastSampleAt = performance.now();
    this.sampler = setInterval(() => this.sample(), SAMPLE_MS).unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.sampler);
    this.histogram?.disable();
  }

  private sample(): void {
    const histogram = this.histogram as ELDHistogram;
    const now = performance.now();
    const lateness = now - this.lastSampleAt - SAMPLE_MS;
    const mean = histogram.count > 0 ? histogram.mean / 1e6 - RESOLUTION_MS : 0;
    histogram.reset();
    this.lastSampleAt = now;
    this.delayMs = Math.max(0, mean, lateness);
    if (this.delayMs > this.maxDelayMs) {
      this.lastOverAt = now;
      if (!this.overloaded) {
        this.overloaded = true;
        this.logger.warn(
          `overloaded: event loop delay ${this.delayMs.toFixed(1)} ms > OVERLOAD_MAX_EVENT_LOOP_DELAY_MS=${this.maxDelayMs}; shedding new proxied requests`,
        );
      }
    } else if (this.overloaded && now - this.lastOverAt >= RECOVERY_MS) {
      this.overloaded = false;
      this.logger.log(
        `recovered: event loop delay ${this.delayMs.toFixed(1)} ms for ${RECOVERY_MS} ms`,
      );
    }
  }
}
