import { createHash } from "node:crypto";

/** Most step ids whose key {@link stepKey} keeps at hand (the cache starts over past it). */
const KEY_CACHE_SIZE = 10_000;

// Step ids repeat across runs (every run of a function has the same ones): hashing each anew
// was 1.5% of a worker's time in a drain of one-step runs.
const cache = new Map<string, string>();

/**
 * The stored identity of a step: the user's id hashed, with `:n` appended before hashing
 * for the n-th repeat of the same id in one run (n ≥ 1). Identity, not position, finds a
 * memoized result, so adding a step elsewhere in the code never shifts others.
 */
export function stepKey(id: string, repeat: number): string {
  const source = repeat === 0 ? id : `${id}:${repeat}`;
  let key = cache.get(source);
  if (key === undefined) {
    key = createHash("sha1").update(source).digest("hex");
    if (cache.size >= KEY_CACHE_SIZE) cache.clear();
    cache.set(source, key);
  }
  return key;
}
