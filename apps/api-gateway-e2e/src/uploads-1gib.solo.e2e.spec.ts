import { patternSha256 } from '@helix/shared-testing';
import { useStubbedGateway } from './support';
import { MiB, paceUpload, rssOf } from './uploads';

// A .solo. suite runs alone, after the others (project.json): it keeps a core busy for 10 s,
// which would starve the timing-sensitive suites beside it.
describe('a 1 GiB upload slower than PROXY_TIMEOUT_MS', () => {
  const file = useStubbedGateway(() => ({ PROXY_TIMEOUT_MS: '1000' }), 'file');

  it('passes with its sha256 intact and the gateway memory flat', async () => {
    const bytes = 1024 * MiB;
    const pid = file.gateway.child.pid as number;
    const expected = patternSha256(bytes);
    const baseline = rssOf(pid);
    const samples: number[] = [];
    const sampler = setInterval(() => samples.push(rssOf(pid)), 250);
    try {
      // 10 s at about 100 MiB/s: ten times the time-to-first-byte limit, gentle on a shared CI.
      const res = await paceUpload(`${file.gateway.url}/api/files/big-upload`, bytes, 10_000);
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({ bodySize: bytes, sha256: expected });
      expect(res.sentAfterMs).toBeGreaterThanOrEqual(9900);
    } finally {
      clearInterval(sampler);
    }
    // Buffered, RSS would climb towards 1 GiB. Streamed, it jumps by what the young generation
    // grows to (40 to 90 MiB measured) in the first second, then holds: no trend after that.
    const half = Math.floor(samples.length / 2);
    const early = Math.max(...samples.slice(0, half));
    const late = Math.max(...samples.slice(half));
    expect(Math.max(early, late) - baseline).toBeLessThan(128 * MiB);
    expect(late - early).toBeLessThan(32 * MiB);
  }, 60_000);
});
