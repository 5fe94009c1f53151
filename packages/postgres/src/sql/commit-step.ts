/**
 * What an upsert of a final step result replaces: only an open row (`waiting`, `retrying`); a
 * final result stands. Shared by {@link COMMIT_STEP} and the run ends that record steps.
 */
export const STEP_UPSERT = `ON CONFLICT (run_id, step_key) DO UPDATE SET
  step_id = excluded.step_id,
  kind = excluded.kind,
  status = excluded.status,
  output = excluded.output,
  error = excluded.error,
  attempt = excluded.attempt,
  wake_at = NULL,
  ended_at = excluded.ended_at
WHERE steps.status IN ('waiting', 'retrying')`;

/** The lease check of the one-step commits ($1 run id, $2 lease epoch), see {@link COMMIT_STEP}. */
const LEASE_HELD = "EXISTS (SELECT 1 FROM runs WHERE id = $1 AND lease_epoch = $2 AND status = 'running' FOR SHARE)";

/**
 * THE hot path: records a step's final result in one autocommitted statement, only while the
 * run's lease epoch is still the committer's.
 *
 * $1 run id, $2 lease epoch, $3 step key, $4 step id, $5 kind, $6 status, $7 output (JSON
 * text), $8 error (JSON text), $9 attempt, $10 now, $11 when the body began (the row's
 * `created_at`; a retried step keeps the time its first attempt began).
 *
 * - The lease check requires the run to be running under this epoch (a run recovered, finished
 *   or never claimed takes no step results) and locks the run row FOR SHARE: a concurrent claim
 *   (which updates the row) waits for this commit, so the new owner's step load sees it; and a
 *   claim that committed first is seen by the lock's re-check of `lease_epoch`, so nothing is
 *   written. This check is also why `steps.run_id` carries no foreign key (see 000001_init.sql).
 * - The check is an `EXISTS` sub-select rather than a CTE joined into the insert: the same lock
 *   and the same re-check, but on a Postgres 15 server a commit of the CTE form took 1.17× a
 *   bare single-row INSERT commit and this form 1.07× (medians of 40 interleaved rounds of 100).
 * - The upsert ({@link STEP_UPSERT}) replaces only an open row; a final result stands.
 * - No RETURNING: the written row is the commit itself, and reading rows back costs a
 *   round of row parsing on every step. `rowCount` 0 means "nothing written", and the
 *   caller reads {@link COMMIT_STEP_READBACK} to learn why.
 */
export const COMMIT_STEP = `
INSERT INTO steps (run_id, step_key, step_id, kind, status, output, error, attempt, created_at, ended_at)
SELECT $1, $3, $4, $5::step_kind, $6::step_status, $7::jsonb, $8::jsonb, $9, $11, $10
WHERE ${LEASE_HELD}
${STEP_UPSERT}`;

/**
 * The common case of {@link COMMIT_STEP}: the step had no row when the pass began (the executor
 * says so), so a plain insert does; a unique violation (SQLSTATE 23505) means another worker
 * recorded it meanwhile, and the caller reads {@link COMMIT_STEP_READBACK}. Skipping the upsert
 * and passing the time as epoch milliseconds (no `Date` formatting) keeps the hot path near a
 * bare INSERT. Same parameters as {@link COMMIT_STEP}, with $10 and $11 in epoch milliseconds.
 */
export const COMMIT_NEW_STEP = `
INSERT INTO steps (run_id, step_key, step_id, kind, status, output, error, attempt, created_at, ended_at)
SELECT $1, $3, $4, $5::step_kind, $6::step_status, $7::jsonb, $8::jsonb, $9, to_timestamp($11::float8 / 1000), to_timestamp($10::float8 / 1000)
WHERE ${LEASE_HELD}`;

/**
 * After a commit wrote nothing: the run's current epoch and the step's recorded row (if any).
 *
 * $1 run id, $2 step key.
 */
export const COMMIT_STEP_READBACK = `
SELECT runs.lease_epoch, steps.step_key, steps.step_id, steps.kind, steps.status, steps.output::text AS output, steps.error, steps.attempt
FROM runs LEFT JOIN steps ON steps.run_id = runs.id AND steps.step_key = $2
WHERE runs.id = $1`;

/**
 * {@link COMMIT_NEW_STEP} for several steps at once (group commit): one statement, one commit.
 * The lease rows are locked in id order, so two batches (or a batch and a claim) never wait on
 * each other in a circle. A step already recorded, or whose lease is gone, is left out of the
 * answer (ON CONFLICT DO NOTHING keeps one conflict from undoing the others), and the caller
 * reads {@link COMMIT_STEP_READBACK} for it.
 *
 * $1..$11 arrays of the parameters of {@link COMMIT_NEW_STEP}, one element per step. Answers
 * the run id and key of each step written.
 */
export const COMMIT_NEW_STEPS = `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int4[], $10::float8[], $11::float8[])
    AS input(run_id, lease_epoch, step_key, step_id, kind, status, output, error, attempt, at_ms, started_ms)
), lease AS (
  SELECT runs.id FROM runs
  WHERE (runs.id, runs.lease_epoch) IN (SELECT run_id, lease_epoch FROM input) AND runs.status = 'running'
  ORDER BY runs.id
  FOR SHARE
)
INSERT INTO steps (run_id, step_key, step_id, kind, status, output, error, attempt, created_at, ended_at)
SELECT input.run_id, input.step_key, input.step_id, input.kind::step_kind, input.status::step_status, input.output::jsonb, input.error::jsonb,
  input.attempt, to_timestamp(input.started_ms / 1000), to_timestamp(input.at_ms / 1000)
FROM input JOIN lease ON lease.id = input.run_id
ON CONFLICT (run_id, step_key) DO NOTHING
RETURNING run_id, step_key`;
