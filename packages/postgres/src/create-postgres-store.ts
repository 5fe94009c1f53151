import type { IngestInput, RunFlow, RunRecord, RunStore } from "@stepwise/engine";
import type pg from "pg";
import { cancelRun, createRuns } from "./cancel-and-rerun.js";
import { createClaimRun } from "./claim-run.js";
import { createCommitStep } from "./commit-step.js";
import { createFinishRun } from "./finish-run.js";
import { type GroupLimits, groupedWrite } from "./group-commit.js";
import { GROUPED_INGEST_MAX_EVENTS, ingestEvents, ingestManyWithoutKeys, ingestsInOneStatement } from "./ingest-events.js";
import { ListQuery } from "./list-query.js";
import {
  EVENT_COLUMNS,
  type EventRow,
  epochMs,
  jsonParam,
  RUN_COLUMNS,
  type RunRow,
  STEP_DETAIL_COLUMNS,
  type StepRow,
  timeParam,
  toRunRecord,
  toStepRecord,
  toStoredEvent,
} from "./map-rows.js";
import { qualifyFunctionIds } from "./qualify-function-ids.js";
import { recordCronTick } from "./record-cron-tick.js";
import { findWaits, resolveWait, settleConcurrentWrites } from "./resolve-wait.js";
import { suspendRun } from "./suspend-run.js";
import { withClient, withTransaction } from "./with-client.js";

/** Options of {@link createPostgresStore}. */
export interface PostgresStoreOptions {
  /**
   * A `pg.Pool` on a migrated database (see `migrate`): a Postgres server's, or PGlite's from
   * `openPglite`. The store runs every query on a connection it takes from the pool and
   * gives back, so one pool may serve other code too.
   */
  pool: pg.Pool;
  /** Whether `store.close()` ends the pool. (Default: false: the caller owns the pool and ends it) */
  ownsPool?: boolean;
  /**
   * Group commit of ingests, claims, step results and run ends: writes of many runs that arrive
   * together go to the database as one statement and one commit. A write never waits for
   * company: it goes out alone while fewer than `maxInFlight` statements of its kind are in
   * flight. `false` writes every result alone. (Default: `maxBatch` 500; `maxInFlight` 1 for
   * each kind: writes arriving while one statement is out batch behind it. Against 2 in flight,
   * that doubled the Event API's throughput on a 2-core machine and raised the drain rate of
   * two workers at concurrency 50 by 12% (`../shared/peer-bench` W3): the cost of a write is
   * mostly per statement, on both ends, and a lone write still goes out at once)
   */
  groupCommit?: false | Partial<GroupLimits>;
}

/** Most writes one group-commit statement carries. */
const DEFAULT_MAX_BATCH = 500;

/** Most runs `listRuns` answers when no `limit` is given. */
const DEFAULT_LIST_LIMIT = 100;

const EXTEND_LEASE = "UPDATE runs SET lease_expires_at = $3 WHERE id = $1 AND lease_epoch = $2 AND status = 'running'";

const RELEASE_RUN = `
UPDATE runs SET status = 'queued', wake_at = $3, lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND lease_epoch = $2 AND status = 'running'`;

const RETRY_RUN = `
UPDATE runs SET status = 'queued', attempt = attempt + 1, error = $3::jsonb, wake_at = $4, lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND lease_epoch = $2 AND status = 'running'`;

const LIST_DUE_RUNS = `
SELECT id, function_id, wake_at, flow, started_at IS NULL AS fresh FROM runs
WHERE status IN ('queued', 'sleeping', 'waiting') AND wake_at <= $1
ORDER BY wake_at, id
LIMIT $2`;

/** Runs past their `timeouts` deadline (`runs_timeout_idx`), for the engine to cancel. */
const LIST_TIMED_OUT = `
SELECT id, function_id, started_at IS NOT NULL AS started FROM runs
WHERE timeout_at IS NOT NULL AND timeout_at <= $1 AND status IN ('queued', 'running', 'sleeping', 'waiting')
ORDER BY timeout_at, id
LIMIT $2`;

/** The epoch is left alone: the next claim bumps it, which is what fences off the old owner. */
const RECOVER_LEASES = `
UPDATE runs SET status = 'queued', wake_at = $1, lease_owner = NULL, lease_expires_at = NULL
WHERE status = 'running' AND ($2 OR lease_expires_at < $1)
RETURNING id, function_id, flow`;

/**
 * The engine's `RunStore` on Postgres SQL: one implementation for a Postgres server (15+ with
 * pgvector) and for PGlite. Invariants live in the schema's constraints
 * (`migrations/000001_init.sql`); hot-path statements are in `src/sql/`, one per file.
 *
 * Times are the engine's (`now` arguments); only {@link RunStore.now} reads the database clock.
 *
 * The store sets `plan_cache_mode = force_generic_plan` on each connection of `pool` it uses
 * (once, ahead of its first query there): its statements are prepared, and Postgres would
 * otherwise plan its array statements anew at every execution. A pool shared with other code
 * passes the setting on to that code's prepared statements on those connections.
 *
 * @example
 * import pg from "pg";
 * import { createPostgresStore, migrate } from "@stepwise/postgres";
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * await migrate(pool);
 * const store = createPostgresStore({ pool });
 */
export function createPostgresStore(options: PostgresStoreOptions): RunStore {
  const { pool } = options;
  const limits = groupLimits(options.groupCommit);
  const claimRun = createClaimRun(pool, limits);
  const commitStep = createCommitStep(pool, limits);
  const finishRun = createFinishRun(pool, limits);
  const ingestGrouped = groupedWrite(
    limits,
    (input: IngestInput) => withClient(pool, (client) => ingestEvents(client, input)),
    (inputs) => withClient(pool, (client) => ingestManyWithoutKeys(client, inputs)),
  );

  async function updateOne(name: string, text: string, values: unknown[]): Promise<boolean> {
    const result = await withClient(pool, (client) => client.query({ name, text, values }));
    return result.rowCount === 1;
  }

  /**
   * Reads runs. `name` prepares the statement on each connection once: the hot reads (a run by
   * id, the runs of an event) then skip parsing and planning, half of their time.
   */
  async function selectRuns(text: string, values: unknown[], name?: string): Promise<RunRecord[]> {
    const result = await withClient(pool, (client) => client.query<RunRow>(name === undefined ? { text, values } : { name, text, values }));
    return result.rows.map(toRunRecord);
  }

  return {
    // One statement is atomic on its own: BEGIN and COMMIT would only add two round trips.
    ingest(input) {
      if (!ingestsInOneStatement(input)) return withTransaction(pool, (client) => ingestEvents(client, input));
      // Small ingests without keys arriving together (an Event API request each) share a statement and a commit.
      return input.events.length <= GROUPED_INGEST_MAX_EVENTS ? ingestGrouped(input) : withClient(pool, (client) => ingestEvents(client, input));
    },
    claimRun,
    commitStep,
    extendLease: (input) => updateOne("stepwise_extend_lease", EXTEND_LEASE, [input.runId, input.leaseEpoch, timeParam(input.until)]),
    suspendRun: (input) => suspendRun(pool, input),
    releaseRun: (input) => updateOne("stepwise_release_run", RELEASE_RUN, [input.runId, input.leaseEpoch, timeParam(input.wakeAt)]),
    retryRun: (input) => updateOne("stepwise_retry_run", RETRY_RUN, [input.runId, input.leaseEpoch, jsonParam(input.error), timeParam(input.wakeAt)]),
    finishRun,
    findWaits: (eventName, options) => findWaits(pool, eventName, options),
    settleConcurrentWrites: (timeoutMs) => settleConcurrentWrites(pool, timeoutMs),
    resolveWait: (input) => resolveWait(pool, input),

    async markWaitsMatched(input) {
      if (input.eventIds.length === 0) return;
      await withClient(pool, (client) =>
        client.query({
          name: "stepwise_mark_waits_matched",
          text: "UPDATE events SET waits_matched_at = $2 WHERE id = ANY($1::text[]) AND waits_matched_at IS NULL",
          values: [input.eventIds, timeParam(input.now)],
        }),
      );
    },

    async listUnmatchedEvents(input) {
      const result = await withClient(pool, (client) =>
        client.query<EventRow>({
          name: "stepwise_list_unmatched_events",
          text: `SELECT ${EVENT_COLUMNS} FROM events WHERE waits_matched_at IS NULL AND received_at < $1 ORDER BY received_at, id LIMIT $2`,
          values: [timeParam(input.before), input.limit],
        }),
      );
      return result.rows.map(toStoredEvent);
    },

    async listDueRuns(input) {
      const result = await withClient(pool, (client) =>
        client.query<{ id: string; function_id: string; wake_at: Date; flow: RunFlow | null; fresh: boolean }>({
          name: "stepwise_list_due_runs",
          text: LIST_DUE_RUNS,
          values: [timeParam(input.until), input.limit],
        }),
      );
      return result.rows.map((row) => ({
        id: row.id,
        functionId: row.function_id,
        wakeAt: row.wake_at.getTime(),
        ...(row.flow !== null && { flow: row.flow }),
        ...(row.fresh && { fresh: true }),
      }));
    },

    async listTimedOut(input) {
      const result = await withClient(pool, (client) =>
        client.query<{ id: string; function_id: string; started: boolean }>({
          name: "stepwise_list_timed_out",
          text: LIST_TIMED_OUT,
          values: [timeParam(input.now), input.limit],
        }),
      );
      return result.rows.map((row) => ({ id: row.id, functionId: row.function_id, started: row.started }));
    },

    async recoverLeases(input) {
      const result = await withClient(pool, (client) =>
        client.query<{ id: string; function_id: string; flow: RunFlow | null }>({
          name: "stepwise_recover_leases",
          text: RECOVER_LEASES,
          values: [timeParam(input.now), input.all === true],
        }),
      );
      return result.rows.map((row) => ({ id: row.id, functionId: row.function_id, ...(row.flow !== null && { flow: row.flow }) }));
    },

    recordCronTick: (input) => recordCronTick(pool, input),

    qualifyFunctionIds: (ids) => qualifyFunctionIds(pool, ids),

    async getRun(runId) {
      const [run] = await selectRuns(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = $1`, [runId], "stepwise_get_run");
      return run ?? null;
    },

    getRuns: (runIds) =>
      runIds.length === 0 ? Promise.resolve([]) : selectRuns(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = ANY($1::text[])`, [runIds], "stepwise_get_runs"),

    async getEvent(eventId) {
      const result = await withClient(pool, (client) => client.query<EventRow>(`SELECT ${EVENT_COLUMNS} FROM events WHERE id = $1`, [eventId]));
      const row = result.rows[0];
      return row ? toStoredEvent(row) : null;
    },

    async listEvents(filter) {
      // The order of the indexes of migration 000003: each page a seek, no OFFSET.
      const query = new ListQuery()
        .where("name = $1", filter.name)
        .where("received_at >= $1", timeParam(filter.since))
        .where("received_at < $1", timeParam(filter.until))
        .where("(received_at, id) < ($1, $2)", timeParam(filter.before?.receivedAt), filter.before?.id);
      const tail = query.build("received_at DESC, id DESC", filter.limit ?? DEFAULT_LIST_LIMIT);
      const result = await withClient(pool, (client) =>
        client.query<EventRow & { received_at: number }>(`SELECT ${EVENT_COLUMNS}, ${epochMs("received_at")} FROM events ${tail}`, query.values),
      );
      return result.rows.map((row) => ({ ...toStoredEvent(row), receivedAt: Number(row.received_at) }));
    },

    async listSteps(runId) {
      const result = await withClient(pool, (client) =>
        client.query<StepRow>(`SELECT ${STEP_DETAIL_COLUMNS} FROM steps WHERE run_id = $1 ORDER BY seq`, [runId]),
      );
      return result.rows.map(toStepRecord);
    },

    cancelRun: (input) => cancelRun(pool, input),

    createRuns: (input) => createRuns(pool, input),

    listRunsForEvent: (eventId) =>
      selectRuns(
        // A batch is found by any of its events (`runs_event_ids_idx`).
        `SELECT ${RUN_COLUMNS} FROM runs WHERE event_id = $1 OR event_ids @> ARRAY[$1]::text[] ORDER BY created_at, id`,
        [eventId],
        "stepwise_runs_for_event",
      ),

    listRuns(filter) {
      // Row comparison on (created_at, id): the order of the indexes, so each page seeks, no OFFSET.
      const query = new ListQuery()
        .where("function_id = $1", filter.functionId)
        .where("status = $1", filter.status)
        .where("event_id = $1", filter.eventId)
        .where("created_at >= $1", timeParam(filter.since))
        .where("created_at < $1", timeParam(filter.until))
        .where("(created_at, id) < ($1, $2)", timeParam(filter.before?.createdAt), filter.before?.id);
      return selectRuns(`SELECT ${RUN_COLUMNS} FROM runs ${query.build("created_at DESC, id DESC", filter.limit ?? DEFAULT_LIST_LIMIT)}`, query.values);
    },

    async now() {
      const result = await withClient(pool, (client) => client.query<{ now: Date }>("SELECT clock_timestamp() AS now"));
      const now = result.rows[0]?.now;
      if (!now) throw new Error("the database answered no clock_timestamp()");
      return now.getTime();
    },

    async close() {
      if (options.ownsPool) await pool.end();
    },
  };
}

function groupLimits(setting: PostgresStoreOptions["groupCommit"]): GroupLimits | undefined {
  if (setting === false) return undefined;
  const limits = {
    maxInFlight: setting?.maxInFlight ?? 1,
    maxBatch: setting?.maxBatch ?? DEFAULT_MAX_BATCH,
  };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < 1) throw new TypeError(`groupCommit.${name} must be a whole number of at least 1, got ${String(value)}`);
  }
  return limits;
}
