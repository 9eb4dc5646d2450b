import type { LoggerService } from '@nestjs/common';
import pino, { type Logger } from 'pino';
import type { GatewayConfig } from '@helix/gateway-config';
import { isoTimestamp } from './access-log';

/** Injection token of the process's root pino logger. */
export const ROOT_LOGGER = Symbol('ROOT_LOGGER');

/**
 * The process's one pino logger: JSON lines written to stdout, or pretty
 * lines through pino-pretty (a development dependency) with LOG_FORMAT=pretty. SECURITY: no
 * line carries request headers (the access log picks its fields one by one), so no
 * `Authorization` or `Cookie` can reach a log; pino's redaction, which would cost every line,
 * has nothing to do.
 */
export function createRootLogger(config: Pick<GatewayConfig, 'LOG_LEVEL' | 'LOG_FORMAT'>): Logger {
  const options = {
    level: config.LOG_LEVEL,
    base: undefined,
    timestamp: isoTimestamp,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (config.LOG_FORMAT === 'pretty') {
    return pino(options, pino.transport({ target: 'pino-pretty', options: { colorize: true } }));
  }
  // Written synchronously, as pino does by default and nginx writes its logs: the access log
  // comes in batches (AccessLog), and a write of one on the main thread cost less than handing
  // it to the libuv pool (measured: 2 µs a request against 6). A stdout that stops reading
  // holds the gateway back rather than growing its memory without bound.
  return pino(options, pino.destination({ dest: 1, sync: true }));
}

/** Nest's logger interface on pino, so Nest's own lines are JSON too. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, context?: string): void {
    this.logger.info({ context }, String(message));
  }

  error(message: unknown, stack?: string, context?: string): void {
    this.logger.error({ context, stack }, String(message));
  }

  warn(message: unknown, context?: string): void {
    this.logger.warn({ context }, String(message));
  }

  debug(message: unknown, context?: string): void {
    this.logger.debug({ context }, String(message));
  }

  verbose(message: unknown, context?: string): void {
    this.logger.trace({ context }, String(message));
  }

  fatal(message: unknown, context?: string): void {
    this.logger.fatal({ context }, String(message));
  }
}
