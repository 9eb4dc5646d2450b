// CPU time of the benchmark's targets, read from Linux /proc. Shared by `npm run bench` (CPU per
// request at the fixed rate and in the workers phase) and `npm run bench:profile`.
import { readdirSync, readFileSync } from 'node:fs';
import { median } from './stats.ts';

/** Linux's USER_HZ, the unit of utime and stime in /proc/<pid>/stat. */
const CLOCK_TICKS_PER_SECOND = 100;
/** One tick of utime + stime, the resolution of `processCpuMicros`. */
const CPU_TICK_MICROS = 1e6 / CLOCK_TICKS_PER_SECOND;

/** The fields of /proc/<pid>/stat after the command name, from the state (field 3) on. */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name is in parentheses and may itself hold spaces and parentheses.
  return stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
}

/**
 * User and system CPU of every thread of `pid` (Linux /proc), in microseconds, in steps of one
 * 10 ms tick: a CPU profile sees the main thread only, not the libuv pool writing the log or
 * V8's GC helper threads.
 */
export function processCpuMicros(pid: number): number {
  const fields = statFields(pid);
  return (Number(fields[11]) + Number(fields[12])) * CPU_TICK_MICROS;
}

/** Run time of the main thread of `pid` alone, in microseconds, from its nanosecond schedstat. */
function mainThreadCpuMicros(pid: number): number {
  const [runNs] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ');
  return Number(runNs) / 1000;
}

/**
 * `pid` and every process below it (nginx's workers, node:cluster's), found by the parent field
 * of each /proc/<n>/stat: this machine's kernel has no /proc/<pid>/task/<tid>/children
 * (CONFIG_PROC_CHILDREN is off), so the children list is not there to read.
 */
function processTree(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      parents.set(Number(entry), Number(statFields(Number(entry))[1]));
    } catch {
      // Gone between the listing and the read: not one of ours, which the group keeps running.
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const [child, parent] of parents) if (parent === tree[i]) tree.push(child);
  }
  return tree;
}

/** The CPU a process and its descendants have used so far, two ways. */
export interface CpuReading {
  /** utime + stime of every thread of every process in the tree, in 10 ms ticks. */
  allThreadsMicros: number;
  /** Run time of each process's main thread only (/proc/<pid>/schedstat, nanoseconds), summed. */
  mainThreadsMicros: number;
  /** How many processes the tree held: 1, or a master or primary and its workers. */
  processes: number;
}

export function readTreeCpu(pid: number): CpuReading {
  const tree = processTree(pid);
  return {
    allThreadsMicros: tree.reduce((sum, p) => sum + processCpuMicros(p), 0),
    mainThreadsMicros: tree.reduce((sum, p) => sum + mainThreadCpuMicros(p), 0),
    processes: tree.length,
  };
}

/** What `pid`'s tree used since `before`: each figure the difference, the processes counted now. */
export function cpuUsedSince(before: CpuReading, pid: number): CpuReading {
  const now = readTreeCpu(pid);
  return {
    allThreadsMicros: now.allThreadsMicros - before.allThreadsMicros,
    mainThreadsMicros: now.mainThreadsMicros - before.mainThreadsMicros,
    processes: now.processes,
  };
}

/** The CPU a target used over one measured run, and the requests it answered in that run. */
export interface CpuRun extends CpuReading {
  requests: number;
}

/** CPU per answered request of one target: medians over its runs. */
export interface CpuSummary {
  /** utime + stime of every thread of every process of the tree ÷ requests, µs. */
  microsPerRequest: number;
  /**
   * The error bar of `microsPerRequest` in the shortest run: utime and stime are each truncated
   * to a 10 ms tick, so a difference of two readings is off by less than two ticks a process.
   */
  tickErrorMicrosPerRequest: number;
  /** The main threads' run time (nanoseconds) ÷ requests, µs: no libuv pool, no GC helpers. */
  mainThreadMicrosPerRequest: number;
  processes: number;
  runs: CpuRun[];
}

export function summarizeCpu(runs: CpuRun[]): CpuSummary {
  return {
    microsPerRequest: median(runs.map((r) => r.allThreadsMicros / r.requests)),
    tickErrorMicrosPerRequest: Math.max(
      ...runs.map((r) => (2 * r.processes * CPU_TICK_MICROS) / r.requests),
    ),
    mainThreadMicrosPerRequest: median(runs.map((r) => r.mainThreadsMicros / r.requests)),
    processes: Math.max(...runs.map((r) => r.processes)),
    runs,
  };
}
