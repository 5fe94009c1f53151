import type { IngestInput } from "@stepwise/engine";
import type pg from "pg";

type Run = IngestInput["runs"][number];

/**
 * Takes advisory locks, held to the end of the transaction, in key order, so that two ingests
 * locking shared keys cannot deadlock.
 */
const LOCK_KEYS = "SELECT pg_advisory_xact_lock(hashtextextended(key, 0)) FROM unnest($1::text[]) AS key ORDER BY key";

/** The id of a (function, key) pair, as {@link lockFunctionKeys} groups by it. @internal */
export const functionKeyId = (functionId: string, key: string) => `${functionId}\u001f${key}`;

/** What {@link lockFunctionKeys} answers: the runs by pair, and the pairs in lock order. */
export interface LockedFunctionKeys {
  /** The runs of each pair, in their order in the ingest. */
  groups: Map<string, Run[]>;
  /** The pair ids, sorted (the order the locks were taken in). */
  ids: string[];
  /** The pairs' function ids and keys, as columns in the order of `ids`. */
  functionIds: string[];
  keys: string[];
}

/**
 * Groups the runs `keyOf` gives a key by (function, key) and locks each pair for the rest of
 * the transaction (a `singleton`'s or a batch's key: under it, an ingest that finds no open run
 * of the pair creates the only one). `namespace` keeps one kind of lock apart from another.
 * Answers nothing, with no statement, when no run has a key.
 * @internal
 */
export async function lockFunctionKeys(
  client: pg.PoolClient,
  runs: Run[],
  keyOf: (run: Run) => string | undefined,
  namespace: string,
): Promise<LockedFunctionKeys | undefined> {
  const groups = new Map<string, Run[]>();
  for (const run of runs) {
    const key = keyOf(run);
    if (key === undefined) continue;
    const id = functionKeyId(run.functionId, key);
    groups.set(id, [...(groups.get(id) ?? []), run]);
  }
  if (groups.size === 0) return undefined;
  const ids = [...groups.keys()].sort();
  await client.query({ name: "stepwise_lock_function_keys", text: LOCK_KEYS, values: [ids.map((id) => namespace + id)] });
  const pairs = ids.map((id) => id.split("\u001f") as [string, string]);
  return { groups, ids, functionIds: pairs.map(([functionId]) => functionId), keys: pairs.map(([, key]) => key) };
}
