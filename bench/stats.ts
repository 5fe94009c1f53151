/** The `p`-th percentile (0–100) of `values`. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

export const median = (values: number[]): number => percentile(values, 50);

/** The arithmetic mean of `values`. */
export const mean = (values: number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;

export const ms = (value: number): string => `${value.toFixed(3)} ms`;

/** `median× (min–max×)` of ratios, for a table cell. */
export const ratioRange = (values: number[]): string => `${median(values).toFixed(2)}× (${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)}×)`;
