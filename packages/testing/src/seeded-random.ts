/** A seeded generator of test inputs; see {@link seededRandom}. */
export interface SeededRandom {
  /** A number in [0, 1). */
  next(): number;
  /** A whole number in [0, below). */
  int(below: number): number;
  /** One of `items`. */
  pick<T>(items: readonly T[]): T;
}

/**
 * mulberry32: a small, fast seeded generator, so that a test that draws kill moments, cut
 * points or malformed requests can print its seed and be replayed exactly.
 *
 * @example
 * const rng = seededRandom(Number(process.env.SEED ?? 42));
 * const killAt = rng.int(1000);
 */
export function seededRandom(seed: number): SeededRandom {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (below: number) => Math.floor(next() * below);
  return { next, int, pick: <T>(items: readonly T[]): T => items[int(items.length)] as T };
}
