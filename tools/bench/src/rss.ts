import { readFileSync } from 'node:fs';

/** The resident set size of process `pid` in bytes, from Linux `/proc/<pid>/status`. */
export function readRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error(`/proc/${pid}/status has no VmRSS line`);
  return Number(match[1]) * 1024;
}

/** Samples the RSS of `pid` every `intervalMs` until `stop()`, which returns the largest sample. */
export function sampleMaxRss(pid: number, intervalMs: number): { stop(): number } {
  let max = readRssBytes(pid);
  const timer = setInterval(() => (max = Math.max(max, readRssBytes(pid))), intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(max, readRssBytes(pid));
    },
  };
}
