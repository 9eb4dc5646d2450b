// CPU time of the benchmark's targets, read from Linux /proc.
import { readFileSync } from 'node:fs';

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
