import type { ThrottlerStorage } from '@nestjs/throttler';
import type Redis from 'ioredis';
import type { GcraRecord } from './rate-limiter';

/**
 * One GCRA hit, atomic in Redis, on Redis's own clock (TIME), so every gateway shares one
 * timeline whatever their clocks say. The hit was admitted already (the gateway decides
 * locally), so it always counts: the key's theoretical arrival time moves one emission
 * interval past max(TAT, now), and the key expires when its bucket is empty.
 */
const GCRA_HIT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local emission = tonumber(ARGV[1]) / tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
tat = tat + emission
redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil(tat - now))
return { math.floor(tat), now }
`;

const COMMAND = 'helixGcraHit';

interface GcraCommand {
  [COMMAND](key: string, windowMs: number, limit: number): Promise<[number, number]>;
}

/**
 * The `@nestjs/throttler` storage interface over ioredis, for RateLimiter's GCRA: one Lua
 * script per hit (`defineCommand`, so it goes as EVALSHA). It replaces
 * `@nest-lab/throttler-storage-redis`, whose fixed windows allow twice the limit at a window's
 * edge. Besides the record, an answer carries the key's TAT and Redis's now.
 */
export class GcraRedisStorage implements ThrottlerStorage {
  constructor(private readonly redis: Redis) {
    redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: GCRA_HIT });
  }

  async increment(
    key: string,
    ttl: number,
    limit: number,
    _blockDuration: number,
    throttlerName: string,
  ): Promise<GcraRecord> {
    const command = this.redis as unknown as GcraCommand;
    const [tat, now] = await command[COMMAND](`helix:rl:${throttlerName}:${key}`, ttl, limit);
    const ahead = Math.max(0, tat - now);
    const totalHits = Math.ceil((ahead * limit) / ttl);
    return {
      totalHits,
      timeToExpire: Math.ceil(ahead / 1000),
      isBlocked: totalHits > limit,
      timeToBlockExpire: 0,
      tat,
      now,
    };
  }
}
