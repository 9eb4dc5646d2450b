import { parseArgs } from 'node:util';

export interface BenchOptions {
  /** Rounds of saturation, fixed-rate and TLS runs; each runs every target once, in order. */
  rounds: number;
  /** Seconds of each measured saturation run and of each TLS run. */
  duration: number;
  /** Seconds of untimed load before each saturation, fixed-rate and TLS run. */
  warmup: number;
  /** Requests in flight at saturation: autocannon's connections, h2load's streams in all. */
  connections: number;
  /** Requests per second of the fixed-rate latency run. */
  rate: number;
  /** Seconds of each fixed-rate latency run, per target and round. */
  latencyDuration: number;
  /** Size of the download streamed through the gateway while its RSS is sampled. */
  downloadBytes: number;
  quick: boolean;
  /** Only the status-page phase: the gateway at saturation with its status page closed and open. */
  statusPageOnly: boolean;
}

const FULL = {
  rounds: 3,
  duration: 10,
  warmup: 2,
  connections: 100,
  rate: 1000,
  latencyDuration: 5,
  downloadBytes: 1024 ** 3,
};

/** A smoke run: every phase once, briefly, in about a minute. */
const QUICK: typeof FULL = {
  ...FULL,
  rounds: 1,
  duration: 2,
  warmup: 1,
  latencyDuration: 2,
  downloadBytes: 64 * 1024 ** 2,
};

/** Flag name, environment variable, and option key of every numeric setting. */
const NUMERIC = [
  ['rounds', 'BENCH_ROUNDS', 'rounds'],
  ['duration', 'BENCH_DURATION', 'duration'],
  ['warmup', 'BENCH_WARMUP', 'warmup'],
  ['connections', 'BENCH_CONNECTIONS', 'connections'],
  ['rate', 'BENCH_RATE', 'rate'],
  ['latency-duration', 'BENCH_LATENCY_DURATION', 'latencyDuration'],
  ['download-bytes', 'BENCH_DOWNLOAD_BYTES', 'downloadBytes'],
] as const;

export const USAGE = `Usage: npm run bench -- [--quick] [--rounds N] [--duration S] [--warmup S]
  [--connections N] [--rate N] [--latency-duration S] [--download-bytes N] [--status-page-only]

Each flag may also be set as BENCH_<NAME> (e.g. BENCH_ROUNDS=5); a flag wins over the variable.
Defaults: ${NUMERIC.map(([flag, , key]) => `--${flag} ${FULL[key]}`).join(', ')}.
--quick:  ${NUMERIC.map(([flag, , key]) => `--${flag} ${QUICK[key]}`).join(', ')}.
--status-page-only (BENCH_STATUS_PAGE_ONLY=1): only the gateway at saturation with its status
  page closed and open, with --rounds, --duration, --warmup and --connections.
`;

export class OptionsError extends Error {
  override readonly name = 'OptionsError';
}

/** Reads the options from flags, then BENCH_* variables, then the defaults of the mode. */
export function readOptions(
  argv: string[],
  env: Record<string, string | undefined>,
): BenchOptions | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        quick: { type: 'boolean', default: false },
        'status-page-only': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        ...Object.fromEntries(NUMERIC.map(([flag]) => [flag, { type: 'string' as const }])),
      },
    }));
  } catch (err) {
    throw new OptionsError((err as Error).message);
  }
  if (values.help) return 'help';
  const quick = values.quick === true || env['BENCH_QUICK'] === '1';
  const statusPageOnly =
    values['status-page-only'] === true || env['BENCH_STATUS_PAGE_ONLY'] === '1';
  const options: BenchOptions = { ...(quick ? QUICK : FULL), quick, statusPageOnly };
  for (const [flag, variable, key] of NUMERIC) {
    const flagValue = values[flag];
    const raw = typeof flagValue === 'string' ? flagValue : env[variable];
    if (raw === undefined) continue;
    if (!/^\d+$/.test(raw) || Number(raw) < 1) {
      throw new OptionsError(
        `--${flag} (${variable}) must be a whole number of at least 1, not "${raw}"`,
      );
    }
    options[key] = Number(raw);
  }
  return options;
}
