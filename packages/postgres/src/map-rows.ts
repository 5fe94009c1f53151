import type { JsonValue, RunStatus, SerializedError } from "@stepwise/core";
import type { StepRecord } from "@stepwise/core/internal";
import type { RunFlow, RunRecord, StoredEvent } from "@stepwise/engine";

// Selected column lists, shared by every query that answers runs, steps or events. JSON
// values that may be a top-level `null` are read as text: pg would turn both SQL NULL and
// jsonb `null` into `null`, and the difference (no output vs. an output of null) matters.

/**
 * A timestamptz column read as epoch milliseconds (float8, whole milliseconds as a `Date` would
 * hold them): pg answers a number, where a timestamp would be a text to parse into a `Date` on
 * every row of every claim. @internal
 */
export function epochMs(column: string, as: string = column): string {
  return `floor(extract(epoch FROM ${column}) * 1000)::float8 AS ${as}`;
}

/** Columns of `runs` read into a {@link RunRow}. @internal */
export const RUN_COLUMNS = [
  "id, function_id, event_id, event_ids, status, attempt, lease_epoch, lease_owner",
  epochMs("lease_expires_at"),
  epochMs("wake_at"),
  "output::text AS output, error, parent_run_id, parent_step_key, rerun_of, flow",
  epochMs("created_at"),
  epochMs("started_at"),
  epochMs("ended_at"),
  epochMs("timeout_at"),
].join(", ");

/** Columns of `steps` read into a {@link StepRow}. @internal */
export const STEP_COLUMNS = "step_key, step_id, kind, status, output::text AS output, error, attempt";

/** {@link STEP_COLUMNS} with the step's times, for listings (a claim has no use for them). @internal */
export const STEP_DETAIL_COLUMNS = `${STEP_COLUMNS}, ${epochMs("created_at")}, ${epochMs("ended_at")}`;

/** Columns of `events` read into an {@link EventRow}. @internal */
export const EVENT_COLUMNS = `id, key, name, data, ${epochMs("ts")}`;

/** A row of {@link RUN_COLUMNS}. @internal */
export interface RunRow {
  id: string;
  function_id: string;
  event_id: string;
  /** The events of a batched run, in order; NULL for a run of one event. */
  event_ids: string[] | null;
  status: RunStatus;
  attempt: number;
  /** bigint: pg answers it as a string. */
  lease_epoch: string;
  lease_owner: string | null;
  lease_expires_at: number | null;
  wake_at: number | null;
  output: string | null;
  error: SerializedError | null;
  parent_run_id: string | null;
  parent_step_key: string | null;
  rerun_of: string | null;
  flow: RunFlow | null;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  timeout_at: number | null;
}

/** A row of {@link STEP_COLUMNS}. @internal */
export interface StepRow {
  step_key: string;
  step_id: string;
  kind: StepRecord["kind"];
  status: StepRecord["status"];
  output: string | null;
  error: SerializedError | null;
  attempt: number;
  /** Only with {@link STEP_DETAIL_COLUMNS}. */
  created_at?: number;
  ended_at?: number | null;
}

/** A row of {@link EVENT_COLUMNS}. @internal */
export interface EventRow {
  id: string;
  key: string | null;
  name: string;
  data: Record<string, unknown>;
  ts: number;
}

/**
 * The parameters of an `unnest` statement (group commit) from one row of values per item: one
 * array per column, each in the items' order. The rows are the one-item statement's parameters,
 * all of one length; `width` is their length, which an empty list needs (Default: the first
 * row's). @internal
 */
export function columnArrays(rows: ReadonlyArray<readonly unknown[]>, width = rows[0]?.length ?? 0): unknown[][] {
  return Array.from({ length: width }, (_, column) => rows.map((row) => row[column]));
}

/** A JSON value as a `::jsonb` parameter: text, so pg never rewrites arrays or strings. @internal */
export function jsonParam(value: JsonValue | SerializedError | RunFlow | undefined): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

/** An epoch-ms time as a timestamptz parameter. @internal */
export function timeParam(ms: number): Date;
export function timeParam(ms: number | undefined): Date | null;
export function timeParam(ms: number | undefined): Date | null {
  return ms === undefined ? null : new Date(ms);
}

/** @internal */
export function toRunRecord(row: RunRow): RunRecord {
  const record: RunRecord = {
    id: row.id,
    functionId: row.function_id,
    eventId: row.event_id,
    status: row.status,
    attempt: row.attempt,
    leaseEpoch: Number(row.lease_epoch),
    createdAt: row.created_at,
  };
  if (row.event_ids !== null && row.event_ids !== undefined) record.eventIds = row.event_ids;
  if (row.lease_owner !== null) record.leaseOwner = row.lease_owner;
  if (row.lease_expires_at !== null) record.leaseExpiresAt = row.lease_expires_at;
  if (row.wake_at !== null) record.wakeAt = row.wake_at;
  if (row.output !== null) record.output = JSON.parse(row.output) as JsonValue;
  if (row.error !== null) record.error = row.error;
  if (row.parent_run_id !== null) record.parentRunId = row.parent_run_id;
  if (row.parent_step_key !== null) record.parentStepKey = row.parent_step_key;
  if (row.rerun_of !== null) record.rerunOf = row.rerun_of;
  if (row.flow !== null) record.flow = row.flow;
  if (row.started_at !== null) record.startedAt = row.started_at;
  if (row.ended_at !== null) record.endedAt = row.ended_at;
  if (row.timeout_at !== null) record.timeoutAt = row.timeout_at;
  return record;
}

/** @internal */
export function toStepRecord(row: StepRow): StepRecord {
  const record: StepRecord = { key: row.step_key, id: row.step_id, kind: row.kind, status: row.status, attempt: row.attempt };
  if (row.output !== null) record.output = JSON.parse(row.output) as JsonValue;
  if (row.error !== null) record.error = row.error;
  if (row.created_at !== undefined) record.startedAt = row.created_at;
  if (row.ended_at !== undefined && row.ended_at !== null) record.endedAt = row.ended_at;
  return record;
}

/** @internal */
export function toStoredEvent(row: EventRow): StoredEvent {
  const event: StoredEvent = { id: row.id, name: row.name, data: row.data, ts: row.ts };
  if (row.key !== null) event.key = row.key;
  return event;
}
