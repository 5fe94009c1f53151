import { describe, expect, it } from "vitest";
import { createPostgresStore } from "../src/create-postgres-store.js";
import { FIND_WAITS } from "../src/resolve-wait.js";
import { DATABASES } from "./record-statements.js";

// CI size; `pnpm test:soak` (STEPWISE_SOAK=1) opens the 100,000 waits.
const soak = process.env["STEPWISE_SOAK"] === "1";
const OPEN_WAITS = Number(process.env["STEPWISE_OPEN_WAITS"] ?? (soak ? 100_000 : 20_000));

/** Rows every node of a plan produced, summed (`Actual Rows` × `Actual Loops`). */
function rowsRead(plan: { "Actual Rows": number; "Actual Loops": number; Plans?: unknown[] }): number {
  const own = plan["Actual Rows"] * plan["Actual Loops"];
  return own + (plan.Plans ?? []).reduce<number>((sum, child) => sum + rowsRead(child as typeof plan), 0);
}

describe.each(DATABASES)("wait matching on %s", (_, createDatabase) => {
  it(`matches an event against ${OPEN_WAITS} open keyed waits of its name reading a bounded number of rows`, { timeout: 180_000 }, async () => {
    const database = await createDatabase();
    try {
      const { pool } = database;
      const now = "2030-01-01T00:00:00Z";
      // The waits as a suspension writes them: one run per user, waiting on data.userId.
      await pool.query(
        `INSERT INTO events (id, name, data, ts, received_at, waits_matched_at)
         SELECT 'evt_' || n, 'user/signed-up', jsonb_build_object('userId', 'u' || n), $1, $1, $1 FROM generate_series(1, $2) AS n`,
        [now, OPEN_WAITS],
      );
      await pool.query(
        `INSERT INTO runs (id, function_id, event_id, status, wake_at, created_at)
         SELECT 'run_' || n, 'app/onboard', 'evt_' || n, 'waiting', NULL, $1 FROM generate_series(1, $2) AS n`,
        [now, OPEN_WAITS],
      );
      await pool.query(
        `INSERT INTO steps (run_id, step_key, step_id, kind, status, wake_at, created_at)
         SELECT 'run_' || n, 'reply', 'reply', 'wait', 'waiting', '2030-01-02T00:00:00Z', $1 FROM generate_series(1, $2) AS n`,
        [now, OPEN_WAITS],
      );
      await pool.query(
        `INSERT INTO waits (run_id, step_key, step_id, event_name, timeout_at, created_at, match_path, match_value)
         SELECT 'run_' || n, 'reply', 'reply', 'user/replied', '2030-01-02T00:00:00Z', $1, 'data.userId', '"u' || n || '"' FROM generate_series(1, $2) AS n`,
        [now, OPEN_WAITS],
      );
      await pool.query("ANALYZE waits");
      // The event's fields, as the engine offers them (eventMatchValues): id, name, data.*.
      const values: Array<[string, string]> = [
        ["id", '"evt_reply"'],
        ["name", '"user/replied"'],
        ["data.userId", `"u${Math.floor(OPEN_WAITS / 2)}"`],
        ["data.text", '"thanks"'],
      ];
      const params = ["user/replied", values.map(([path]) => path), values.map(([, value]) => value), new Date(now)];
      const store = createPostgresStore({ pool });
      const found = await store.findWaits("user/replied", { matchValues: values, now: Date.parse(now) });
      expect(found.map((wait) => wait.runId)).toEqual([`run_${Math.floor(OPEN_WAITS / 2)}`]);
      const explained = await pool.query<{ "QUERY PLAN": Array<{ Plan: Parameters<typeof rowsRead>[0] }> }>(
        `EXPLAIN (ANALYZE, FORMAT JSON) ${FIND_WAITS}`,
        params,
      );
      const plan = explained.rows[0]?.["QUERY PLAN"][0]?.Plan;
      const read = rowsRead(plan as Parameters<typeof rowsRead>[0]);
      console.log(`wait matching: ${OPEN_WAITS} open waits of one name, 1 matched, ${read} rows through the plan's nodes`);
      expect(read).toBeLessThanOrEqual(20);
    } finally {
      await database.close();
    }
  });
});
