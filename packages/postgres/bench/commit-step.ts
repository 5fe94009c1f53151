/**
 * What one step commit costs on PGlite, next to a bare single-row INSERT on the same
 * database, and how the lease check's variants compare.
 *
 *   node --conditions=@stepwise/source --import tsx packages/postgres/bench/commit-step.ts
 *
 * Every variant goes through the same path as the store (pool.connect, one query, release),
 * in interleaved rounds so that drift (JIT, table growth) hits them alike. `N` sets the number
 * of commits per variant (Default: 12000).
 */
import type { StepCommit } from "@stepwise/core/internal";
import { createPostgresStore } from "../src/create-postgres-store.js";
import { migrate } from "../src/migrate.js";
import { openPglite } from "../src/pglite.js";
import { COMMIT_STEP } from "../src/sql/commit-step.js";

const total = Number(process.env["N"] ?? 12000);
const rounds = 12;
const { pool, close } = await openPglite();
await migrate(pool);
const store = createPostgresStore({ pool });
const setup = await pool.connect();
await setup.query(`
  CREATE TABLE bare (run_id text, step_key text, output jsonb);
  CREATE TABLE bare_step_row (LIKE steps);
  CREATE TABLE steps_copy (LIKE steps INCLUDING ALL);
  CREATE TABLE steps_fk (LIKE steps INCLUDING ALL, FOREIGN KEY (run_id) REFERENCES runs (id));`);
setup.release();
const trigger = { id: "evt-bench", name: "bench/run", data: {}, ts: Date.now() };
await store.ingest({ events: [trigger], runs: [{ id: "run-bench", functionId: "bench", eventId: trigger.id }], now: Date.now() });
const claimed = await store.claimRun({ runId: "run-bench", workerId: "bench", now: Date.now(), leaseMs: 3_600_000 });
if (!claimed) throw new Error("could not claim the bench run");
const epoch = claimed.run.leaseEpoch;

let seq = 0;
const output = () => ({ hello: "world", n: seq });
const commit = (): StepCommit => ({ key: `k${++seq}`, id: "step", kind: "run", status: "completed", output: output(), attempt: 0 });
const commitValues = () => {
  const step = commit();
  return ["run-bench", epoch, step.key, step.id, step.kind, step.status, JSON.stringify(step.output), null, 0, new Date()];
};
const insertRow = (table: string) => `INSERT INTO ${table} (run_id, step_key, step_id, kind, status, output, error, attempt, created_at, ended_at)
  VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $9)`;
const rowValues = () => commitValues().filter((_, index) => index !== 1);
const exists = COMMIT_STEP.replace(/WITH lease AS \([\s\S]*?\)\s*/, "")
  .replace("FROM lease", "WHERE EXISTS (SELECT 1 FROM runs WHERE id = $1 AND lease_epoch = $2)")
  .replace("SELECT lease.id,", "SELECT $1,");

type Variant = () => Promise<unknown>;
async function raw(name: string, text: string, values: unknown[]): Promise<void> {
  const client = await pool.connect();
  try {
    const result = await client.query({ name, text, values });
    if (result.rowCount !== 1) throw new Error(`${name} wrote ${result.rowCount} rows`);
  } finally {
    client.release();
  }
}
const variants: Record<string, Variant> = {
  "bare INSERT, 3 columns, no index": () => raw("b1", "INSERT INTO bare VALUES ($1, $2, $3::jsonb)", ["run-bench", `k${++seq}`, JSON.stringify(output())]),
  "bare INSERT of a step row, no index": () => raw("b2", insertRow("bare_step_row"), rowValues()),
  "INSERT of a step row into a copy of steps": () => raw("b3", insertRow("steps_copy"), rowValues()),
  "same, plus a FK to runs": () => raw("b4", insertRow("steps_fk"), rowValues()),
  "store.commitStep (FOR SHARE)": async () => {
    const result = await store.commitStep({ runId: "run-bench", leaseEpoch: epoch, step: commit(), now: Date.now() });
    if (!result.ok) throw new Error("commit rejected");
  },
  "same, FOR KEY SHARE": () => raw("v1", COMMIT_STEP.replace("FOR SHARE", "FOR KEY SHARE"), commitValues()),
  "same, plain EXISTS": () => raw("v2", exists, commitValues()),
  "same, FOR SHARE, unprepared": async () => {
    const client = await pool.connect();
    try {
      await client.query(COMMIT_STEP, commitValues());
    } finally {
      client.release();
    }
  },
  "same, FOR SHARE, steps with FK": () =>
    raw("v3", COMMIT_STEP.replace("INSERT INTO steps", "INSERT INTO steps_fk").replace("WHERE steps.status", "WHERE steps_fk.status"), commitValues()),
};

// Per-round µs per commit; the median round is reported, which shrugs off GC pauses.
const samples: Record<string, number[]> = {};
for (const variant of Object.values(variants)) for (let index = 0; index < 300; index++) await variant();
for (let round = 0; round < rounds; round++) {
  for (const [name, variant] of Object.entries(variants)) {
    const start = performance.now();
    for (let index = 0; index < total / rounds; index++) await variant();
    const perCommit = ((performance.now() - start) / (total / rounds)) * 1000;
    samples[name] = [...(samples[name] ?? []), perCommit];
  }
}
const median = (name: string) => {
  const sorted = [...(samples[name] ?? [])].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};
const bare = median("bare INSERT, 3 columns, no index");
const bareRow = median("bare INSERT of a step row, no index");
console.log(
  `${total} commits per variant in ${rounds} interleaved rounds, PGlite in memory; median µs per commit, then its ratio to the bare 3-column INSERT and to the bare step-row INSERT`,
);
for (const name of Object.keys(variants)) {
  console.log(`${name.padEnd(40)} ${median(name).toFixed(0).padStart(5)} µs   ${(median(name) / bare).toFixed(2)}×   ${(median(name) / bareRow).toFixed(2)}×`);
}
await close();
