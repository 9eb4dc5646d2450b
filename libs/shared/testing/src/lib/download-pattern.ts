import { createHash } from 'node:crypto';

// Byte `i` of a download is `i % PATTERN_PERIOD`.
const PATTERN_PERIOD = 251;

// The stub streams a download in chunks of this size.
const DOWNLOAD_CHUNK_BYTES = 64 * 1024;

// A prime period that does not divide the chunk size makes a dropped, repeated or reordered
// chunk change the digest. One period of slack lets any offset be served as a view, not a copy.
const PATTERN = Buffer.from(
  Array.from({ length: DOWNLOAD_CHUNK_BYTES + PATTERN_PERIOD }, (_, i) => i % PATTERN_PERIOD),
);

/** The `length` bytes of the pattern that start at `offset` (at most one chunk; no copy). */
export function patternChunk(offset: number, length: number): Buffer {
  const start = offset % PATTERN_PERIOD;
  return PATTERN.subarray(start, start + Math.min(length, DOWNLOAD_CHUNK_BYTES));
}

/** The hex sha256 of the first `bytes` bytes of the download pattern, computed chunk by chunk. */
export function patternSha256(bytes: number): string {
  const hash = createHash('sha256');
  for (let offset = 0; offset < bytes; offset += DOWNLOAD_CHUNK_BYTES) {
    hash.update(patternChunk(offset, bytes - offset));
  }
  return hash.digest('hex');
}
