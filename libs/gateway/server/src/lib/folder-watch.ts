import { createHash } from 'node:crypto';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { dirname } from 'node:path';
import { Logger } from '@nestjs/common';

/**
 * A change settles first: an editor writes then renames, a ConfigMap or Secret writes a new
 * folder then swaps `..data`.
 */
const SETTLE_MS = 100;

/**
 * Calls `onChange` when files may have changed: on any event in their folders, settled, and
 * on a slow poll as a safety net (an event can be lost, e.g. on some network file systems).
 * The folders are watched, not the files: a watch on a file follows its inode and goes silent
 * once an editor renames a new file over it, or Kubernetes swaps the `..data` symlink that
 * a mounted ConfigMap's or Secret's files point through. The caller compares contents, so a
 * spurious call costs one read.
 */
export class FolderWatch {
  private readonly watchers: FSWatcher[] = [];
  private settle: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout | undefined;

  constructor(
    private readonly files: readonly string[],
    private readonly onChange: () => void,
    private readonly pollMs: number,
    /** Where a lost watch is reported: Nest's logger, or the primary's pino. */
    private readonly warn: (message: string) => void = (message) =>
      new Logger(FolderWatch.name).warn(message),
  ) {}

  start(): void {
    for (const folder of new Set(this.files.map((file) => dirname(file)))) {
      try {
        const watcher = watch(folder, () => this.schedule());
        watcher.on('error', (err) => this.warn(`stopped watching ${folder}: ${err.message}`));
        watcher.unref();
        this.watchers.push(watcher);
      } catch (err) {
        this.warn(
          `cannot watch ${folder} (${(err as NodeJS.ErrnoException).code}); polling every ${this.pollMs} ms`,
        );
      }
    }
    this.poll = setInterval(() => this.onChange(), this.pollMs).unref();
  }

  stop(): void {
    clearTimeout(this.settle);
    clearInterval(this.poll);
    for (const watcher of this.watchers) watcher.close();
  }

  private schedule(): void {
    clearTimeout(this.settle);
    this.settle = setTimeout(() => this.onChange(), SETTLE_MS);
    this.settle.unref();
  }
}

/** SHA-256 of a file's content, hex, or undefined when it cannot be read now. */
export function hashFile(file: string): string | undefined {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return undefined;
  }
}
