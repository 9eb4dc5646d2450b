import type { LogLevel as NestLogLevel } from '@nestjs/common';
import { LOG_LEVELS } from './env.schema';
import type { LogLevel } from './env.schema';

const NEST_LEVEL: Record<Exclude<LogLevel, 'silent'>, NestLogLevel> = {
  fatal: 'fatal',
  error: 'error',
  warn: 'warn',
  info: 'log',
  debug: 'debug',
  trace: 'verbose',
};

/** Nest's logger levels for a LOG_LEVEL: that level and every more severe one. */
export function nestLogLevels(level: LogLevel): NestLogLevel[] | false {
  if (level === 'silent') return false;
  const upTo = LOG_LEVELS.indexOf(level);
  return LOG_LEVELS.slice(0, upTo + 1).map((l) => NEST_LEVEL[l as Exclude<LogLevel, 'silent'>]);
}
