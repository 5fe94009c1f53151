/** First retry delay before jitter (1 s). */
export const BACKOFF_BASE_MS = 1000;
/** Largest retry delay (10 min). */
export const BACKOFF_MAX_MS = 10 * 60 * 1000;

/**
 * Delay before retry number `attempt + 1`: exponential (1 s, 2 s, 4 s, … capped at 10 min)
 * with "equal jitter", so the delay stays between half and all of the exponential value and
 * retries of many runs spread out instead of arriving together.
 */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const exponential = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return Math.round(exponential / 2 + random() * (exponential / 2));
}
