import { createHash } from "node:crypto";

/**
 * The stored identity of a step: the user's id hashed, with `:n` appended before hashing
 * for the n-th repeat of the same id in one run (n ≥ 1). Identity, not position, finds a
 * memoized result, so adding a step elsewhere in the code never shifts others.
 */
export function stepKey(id: string, repeat: number): string {
  const source = repeat === 0 ? id : `${id}:${repeat}`;
  return createHash("sha1").update(source).digest("hex");
}
