/** A figure measured over rounds: the median, with min and max. */
export interface Figure {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly rounds: readonly number[];
}

export function figure(rounds: readonly number[]): Figure {
  const sorted = [...rounds].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median =
    sorted.length % 2
      ? (sorted[mid] as number)
      : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] ?? NaN, max: sorted.at(-1) ?? NaN, rounds };
}

/** Round-by-round ratios a/b: both were measured in the same round, side by side. */
export function ratio(a: readonly number[], b: readonly number[]): Figure {
  return figure(a.map((x, i) => x / (b[i] as number)));
}

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

export function fmt(value: number, digits = 2): string {
  if (!Number.isFinite(value)) return "n/a";
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString("en-US");
  return value.toFixed(digits);
}

/** `median (min–max)` */
export function show(f: Figure, digits = 2, unit = ""): string {
  return `${fmt(f.median, digits)}${unit} (${fmt(f.min, digits)}–${fmt(f.max, digits)})`;
}
