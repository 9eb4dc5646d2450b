import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { patternChunk } from '@helix/shared-testing';

export const MiB = 1024 * 1024;

/** Resident set size of a process, in bytes, from /proc (Linux). */
export function rssOf(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

export interface Upload {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** ms from the first byte sent to the response head, and to the last byte sent. */
  headAfterMs: number;
  sentAfterMs: number;
}

/**
 * POSTs `bytes` of the download pattern (patternSha256 gives their digest) to `url` at a steady
 * pace that takes `durationMs`, with a Content-Length or chunked, and reads the whole answer.
 */
export function paceUpload(
  url: string,
  bytes: number,
  durationMs: number,
  options: { chunked?: boolean; pieceBytes?: number } = {},
): Promise<Upload> {
  const piece = options.pieceBytes ?? 64 * 1024;
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let headAt = 0;
    let sentAt = 0;
    const req = request(url, {
      method: 'POST',
      agent: false,
      headers: {
        'content-type': 'application/octet-stream',
        ...(options.chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': bytes }),
      },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      headAt = Date.now();
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        // An answer before the whole body: the rest is not sent, so nothing waits for it.
        if (sentAt === 0) req.destroy();
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(parts).toString(),
          headAfterMs: headAt - started,
          sentAfterMs: (sentAt || Date.now()) - started,
        });
      });
    });
    const send = async () => {
      for (let offset = 0; offset < bytes; offset += piece) {
        if (req.destroyed || headAt !== 0) return;
        const due = started + (durationMs * offset) / bytes;
        if (due > Date.now()) await sleep(due - Date.now());
        if (!req.write(patternChunk(offset, Math.min(piece, bytes - offset)))) {
          await new Promise((r) => req.once('drain', r));
        }
      }
      sentAt = Date.now();
      req.end();
    };
    send().catch(reject);
  });
}
