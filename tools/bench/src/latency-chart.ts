import type { BenchResults } from './report.ts';
import { TARGETS } from './report.ts';

const PERCENTILES = [
  { key: 'p50Ms', label: 'p50', color: '#4c78a8' },
  { key: 'p90Ms', label: 'p90', color: '#f58518' },
  { key: 'p99Ms', label: 'p99', color: '#e45756' },
] as const;

const HEIGHT = 380;
const PLOT = { left: 64, right: 24, top: 56, bottom: 64 };
const BAR_WIDTH = 36;
const BAR_GAP = 6;
/** Three bars and the space between groups; the chart grows with the targets. */
const GROUP_WIDTH = 136;
const WIDTH = PLOT.left + PLOT.right + TARGETS.length * GROUP_WIDTH;
/** The latencies' resolution: the bottom of the log axis can go no lower. */
const RESOLUTION_MS = 0.01;

/** The decades around `values`: a log axis from the power of ten at or below the smallest. */
function decades(values: number[]): { low: number; high: number } {
  const low = Math.floor(Math.log10(Math.min(...values)));
  return { low, high: Math.max(low + 1, Math.ceil(Math.log10(Math.max(...values)))) };
}

const escape = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * Grouped bars on a log scale (a p99 can be a hundred times the p50): p50, p90 and p99 of the
 * fixed-rate run for every target, with the value above each bar. A hand-written SVG, so the
 * README can embed it and git can diff it.
 */
export function drawLatencyChart(results: BenchResults): string {
  const { targets, ratePerSecond, rounds, durationSeconds } = results.fixedRate;
  const plotHeight = HEIGHT - PLOT.top - PLOT.bottom;
  const values = TARGETS.flatMap((t) =>
    PERCENTILES.map((p) => Math.max(targets[t][p.key], RESOLUTION_MS)),
  );
  const { low, high } = decades(values);
  const y = (ms: number): number =>
    PLOT.top + plotHeight * (1 - (Math.log10(Math.max(ms, RESOLUTION_MS)) - low) / (high - low));
  const barsWidth = PERCENTILES.length * BAR_WIDTH + (PERCENTILES.length - 1) * BAR_GAP;

  const parts: string[] = [];
  for (let exponent = low; exponent <= high; exponent++) {
    const ty = y(10 ** exponent).toFixed(1);
    parts.push(
      `<line x1="${PLOT.left}" x2="${WIDTH - PLOT.right}" y1="${ty}" y2="${ty}" stroke="#ddd"/>`,
      `<text x="${PLOT.left - 8}" y="${ty}" text-anchor="end" dominant-baseline="middle">${10 ** exponent >= 1 ? 10 ** exponent : (10 ** exponent).toFixed(-exponent)}</text>`,
    );
  }
  TARGETS.forEach((target, t) => {
    const x0 = PLOT.left + t * GROUP_WIDTH + (GROUP_WIDTH - barsWidth) / 2;
    PERCENTILES.forEach((p, i) => {
      const ms = targets[target][p.key];
      const x = x0 + i * (BAR_WIDTH + BAR_GAP);
      const top = y(ms);
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${BAR_WIDTH}" height="${(PLOT.top + plotHeight - top).toFixed(1)}" fill="${p.color}"><title>${target} ${p.label} ${ms} ms</title></rect>`,
        `<text x="${(x + BAR_WIDTH / 2).toFixed(1)}" y="${(top - 4).toFixed(1)}" text-anchor="middle" font-size="11">${ms.toFixed(2)}</text>`,
      );
    });
    parts.push(
      `<text x="${(PLOT.left + (t + 0.5) * GROUP_WIDTH).toFixed(1)}" y="${PLOT.top + plotHeight + 22}" text-anchor="middle">${target}</text>`,
    );
  });
  PERCENTILES.forEach((p, i) => {
    const x = WIDTH - PLOT.right - (PERCENTILES.length - i) * 64;
    parts.push(
      `<rect x="${x}" y="${HEIGHT - 24}" width="12" height="12" fill="${p.color}"/>`,
      `<text x="${x + 18}" y="${HEIGHT - 14}">${p.label}</text>`,
    );
  });
  const title = `Latency at ${ratePerSecond.toLocaleString('en-US')} req/s, open loop, ${rounds} × ${durationSeconds} s per target (ms, log scale)`;
  const subtitle = `GET ${results.url.path} · ${results.date} · Node ${results.node} · commit ${results.commit}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="system-ui, sans-serif" font-size="13" fill="#222">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#fff"/>`,
    `<text x="${PLOT.left}" y="24" font-size="16" font-weight="600">${escape(title)}</text>`,
    `<text x="${PLOT.left}" y="42" font-size="11" fill="#666">${escape(subtitle)}</text>`,
    ...parts,
    `<line x1="${PLOT.left}" x2="${WIDTH - PLOT.right}" y1="${PLOT.top + plotHeight}" y2="${PLOT.top + plotHeight}" stroke="#222"/>`,
    '</svg>',
    '',
  ].join('\n');
}
