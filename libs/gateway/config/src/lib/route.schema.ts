import { z } from 'zod';
import { DISCOVERY_MODES, type DiscoveryMode, parseUpstreamUrl } from './env.schema';

/** Paths the gateway answers itself; no route may claim them. */
export const RESERVED_PATHS = ['/heartbeat', '/health', '/info'] as const;

const PREFIX = /^(\/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+$/;

const prefix = z
  .string({ message: 'must be a string' })
  .refine(
    (p) => PREFIX.test(p) && !p.split('/').some((s) => s === '.' || s === '..'),
    'must start with / and hold only non-empty segments of letters, digits and . _ ~ -, without a trailing /',
  )
  .refine(
    (p) => !RESERVED_PATHS.some((r) => p === r || p.startsWith(`${r}/`)),
    `must not claim ${RESERVED_PATHS.join(', ')}, which the gateway answers itself`,
  );

const target = z.string({ message: 'must be a list of URLs' }).transform((raw, ctx) => {
  const parsed = parseUpstreamUrl(raw.trim());
  if (typeof parsed === 'string') {
    ctx.addIssue({ code: 'custom', message: `"${raw}" ${parsed}` });
    return z.NEVER;
  }
  return parsed;
});

const milliseconds = (min: number) =>
  z
    .number({ message: 'must be a number of milliseconds' })
    .int('must be a whole number of milliseconds')
    .min(min, `must be at least ${min}`)
    .max(3_600_000, 'must be at most 3600000');

/** One entry of the route table, as written in `GATEWAY_ROUTES_FILE`. */
export const routeSchema = z.strictObject({
  prefix,
  service: z
    .string({ message: 'must be a string' })
    .regex(
      /^[a-z][a-z0-9-]{0,62}$/,
      'must be lower-case letters, digits and -, starting with a letter',
    ),
  targets: z
    .array(target, { message: 'must be a list of URLs' })
    .min(1, 'must list at least one URL')
    .optional(),
  stripPrefix: z.boolean({ message: 'must be true or false' }).default(false),
  timeoutMs: milliseconds(1).optional(),
  connectTimeoutMs: milliseconds(1).optional(),
  idleTimeoutMs: milliseconds(0).optional(),
  balance: z
    .enum(['round-robin', 'least-in-flight'], { message: 'must be round-robin or least-in-flight' })
    .optional(),
  retry: z.boolean({ message: 'must be true or false' }).default(true),
  discovery: z.enum(DISCOVERY_MODES, { message: 'must be static or dns' }).optional(),
  websocket: z.boolean({ message: 'must be true or false' }).default(true),
  maxInFlight: z
    .number({ message: 'must be a number of requests' })
    .int('must be a whole number of requests')
    .min(1, 'must be at least 1')
    .optional(),
  maxBodyBytes: z
    .number({ message: 'must be a number of bytes' })
    .int('must be a whole number of bytes')
    .min(0, 'must be at least 0')
    .optional(),
  rateLimit: z
    .strictObject(
      {
        max: z
          .number({ message: 'max must be a number' })
          .int('max must be a whole number')
          .min(0, 'max must be at least 0'),
        windowMs: z
          .number({ message: 'windowMs must be a number of milliseconds' })
          .int('windowMs must be a whole number of milliseconds')
          .min(1, 'windowMs must be at least 1'),
      },
      { message: 'must be { max, windowMs }' },
    )
    .optional(),
});

export const routeFileSchema = z.strictObject({
  routes: z
    .array(routeSchema, { message: 'must be a list of routes' })
    .min(1, 'must hold at least one route'),
});

export type RouteEntry = z.output<typeof routeSchema>;

/** A route as the gateway runs it: targets and timeouts resolved against the environment. */
export type GatewayRoute = Omit<
  RouteEntry,
  | 'targets'
  | 'timeoutMs'
  | 'connectTimeoutMs'
  | 'idleTimeoutMs'
  | 'balance'
  | 'maxInFlight'
  | 'discovery'
> & {
  /** `dns`: each address a target's name resolves to is an instance (the first route of a
   * service sets it). */
  discovery: DiscoveryMode;
  /** Requests in flight to the route's service at once (the first route of a service sets it). */
  maxInFlight: number;
  targets: URL[];
  timeoutMs: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  balance: 'round-robin' | 'least-in-flight';
};
