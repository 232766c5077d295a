/** Percentiles, block ratios and formatting for bench/run.ts. Pure functions, no I/O. */

/** The summary of one variant's samples (microseconds). */
export interface Summary {
  n: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile of ascending `sorted` (p in 0..1). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(p * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    n: sorted.length,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted.at(-1) ?? Number.NaN,
    mean: sorted.length ? sum / sorted.length : Number.NaN,
  };
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

/** Microseconds, human-scaled: "37.2 µs", "4.81 ms", "1.20 s". */
export function us(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  if (value < 1_000) return `${value.toFixed(1)} µs`;
  if (value < 1_000_000) return `${(value / 1_000).toFixed(2)} ms`;
  return `${(value / 1_000_000).toFixed(2)} s`;
}

export function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}x` : "n/a";
}

export function bytes(size: number): string {
  if (size >= 1 << 20) return `${size / (1 << 20)} MiB`;
  if (size >= 1 << 10) return `${size / (1 << 10)} KiB`;
  return `${size} B`;
}

export function mib(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MiB`;
}

/** The comments that begin and end a generated section of a results file. */
export interface SectionMarkers {
  begin: string;
  end: string;
}

/** The section of `text` between (and with) `markers`, if it has one. */
export function sectionOf(text: string, markers: SectionMarkers): string | undefined {
  const begin = text.indexOf(markers.begin);
  const end = text.indexOf(markers.end, begin);
  return begin >= 0 && end > begin ? text.slice(begin, end + markers.end.length) : undefined;
}

/**
 * `text` with its `markers` section replaced by `section` (which carries the markers); without
 * one, `section` goes before the line `before` (the hand-written analysis), else at the end.
 */
export function withSection(text: string, markers: SectionMarkers, section: string, before: string): string {
  const old = sectionOf(text, markers);
  if (old !== undefined) return text.replace(old, () => section);
  const at = text.indexOf(before);
  return at >= 0 ? `${text.slice(0, at)}${section}\n\n${text.slice(at)}` : `${text}\n${section}\n`;
}
