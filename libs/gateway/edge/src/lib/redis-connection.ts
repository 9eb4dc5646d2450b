import Redis from 'ioredis';
import type { GatewayConfig } from '@helix/gateway-config';

/** Reconnects back off to this, so a Redis that is back is found again within it. */
const MAX_BACKOFF_MS = 2000;

const backOff = (attempt: number): number => Math.min(attempt * 200, MAX_BACKOFF_MS);

/**
 * The Redis of shared rate limits: by REDIS_URL (TLS with `rediss://`, a password in the URL
 * or REDIS_PASSWORD), or the primary that REDIS_SENTINELS report for REDIS_SENTINEL_NAME,
 * followed through a failover. ioredis asks the Sentinels for the primary on every reconnect
 * and, with `failoverDetector`, hears their `+switch-master` at once. Nothing is queued while
 * disconnected: a hit that cannot be shared now is counted locally instead.
 */
export function connectRedis(config: GatewayConfig): Redis {
  const options = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2000,
    retryStrategy: backOff,
    ...(config.REDIS_PASSWORD ? { password: config.REDIS_PASSWORD } : {}),
  };
  if (config.REDIS_URL) return new Redis(config.REDIS_URL, options);
  return new Redis({
    ...options,
    sentinels: config.REDIS_SENTINELS,
    name: config.REDIS_SENTINEL_NAME,
    failoverDetector: true,
    sentinelRetryStrategy: backOff,
  });
}
