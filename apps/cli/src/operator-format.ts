import type { EventInfo, RunInfo, StepInfo, StepwiseApi } from "@stepwise/core";
import { escapeControl, shortJson } from "./printer.js";

// The text the operators' commands print. Everything in it that came from users or their code
// (ids, names, outputs, error messages) goes through escapeControl, as the dev printer's does.

/** A page of `GET /v1/runs`. */
export type RunPage = Awaited<ReturnType<StepwiseApi["listRuns"]>>;
/** A page of `GET /v1/events`. */
export type EventPage = Awaited<ReturnType<StepwiseApi["listEvents"]>>;
/** A run with its steps, as `GET /v1/runs/:id` answers it. */
export type RunDetail = Awaited<ReturnType<StepwiseApi["getRun"]>>;

/** Columns padded to their widest cell and two spaces apart; the last column is not padded. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** A length of time for people: `340 ms`, `2.5 s`, `3m 20s`, `5h 12m`, `2d 3h`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.floor(ms / 1000);
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86_400)}d ${Math.floor((seconds % 86_400) / 3600)}h`;
}

/** An epoch-ms time as ISO 8601 (what `--since` and `--until` take back), `-` when absent. */
export function formatTime(ms: number | undefined): string {
  return ms === undefined ? "-" : new Date(ms).toISOString();
}

/** The time between two instants, `-` while the second has not come. */
function span(from: number | undefined, to: number | undefined): string {
  return from === undefined || to === undefined ? "-" : formatDuration(to - from);
}

/** `<app>/<function>`, the id `--function` also takes; the function id alone for runs from before app ids. */
function qualifiedFunction(run: RunInfo): string {
  return escapeControl(run.appId === undefined ? run.functionId : `${run.appId}/${run.functionId}`);
}

/** The line that says how to get the next page, when there is one. */
function nextPageLine(nextCursor: string | null): string[] {
  return nextCursor === null ? [] : [`more: repeat the command with --cursor ${escapeControl(nextCursor)}`];
}

/** `stepwise runs list`: a table of the page's runs, newest first, then how to get the next page. */
export function formatRunPage(page: RunPage): string {
  if (page.runs.length === 0) return "no runs match";
  const rows = page.runs.map((run) => [
    escapeControl(run.id),
    qualifiedFunction(run),
    run.status,
    formatTime(run.createdAt),
    formatTime(run.endedAt),
    span(run.createdAt, run.endedAt),
  ]);
  return [formatTable(["RUN", "FUNCTION", "STATUS", "CREATED", "ENDED", "DURATION"], rows), ...nextPageLine(page.nextCursor)].join("\n");
}

/** `stepwise events list`: a table of the page's events, newest received first, then how to get the next page. */
export function formatEventPage(page: EventPage): string {
  if (page.events.length === 0) return "no events match";
  const rows = page.events.map((event: EventInfo) => [
    escapeControl(event.id),
    escapeControl(event.name),
    formatTime(event.receivedAt ?? event.ts),
    escapeControl(shortJson(event.data, 60)),
  ]);
  return [formatTable(["EVENT", "NAME", "RECEIVED", "DATA"], rows), ...nextPageLine(page.nextCursor)].join("\n");
}

/** `stepwise runs show`: the run's fields, its output or error, and a table of its steps in recorded order. */
export function formatRunDetail({ run, steps }: RunDetail): string {
  const fields: Array<[string, string]> = [
    ["run", escapeControl(run.id)],
    ["function", qualifiedFunction(run)],
    ["status", `${run.status}${run.attempt > 0 ? ` (attempt ${run.attempt + 1})` : ""}`],
    ["event", escapeControl(run.eventId)],
  ];
  if (run.rerunOf !== undefined) fields.push(["rerun of", escapeControl(run.rerunOf)]);
  fields.push(["created", formatTime(run.createdAt)]);
  if (run.endedAt !== undefined) fields.push(["ended", `${formatTime(run.endedAt)} (${span(run.createdAt, run.endedAt)})`]);
  if (run.output !== undefined) fields.push(["output", escapeControl(shortJson(run.output, 500))]);
  if (run.error !== undefined) fields.push(["error", escapeControl(`${run.error.code ? `${run.error.code}: ` : ""}${run.error.message}`)]);
  const width = Math.max(...fields.map(([name]) => name.length));
  const lines = fields.map(([name, value]) => `${name.padEnd(width)}  ${value}`);
  lines.push("", steps.length === 0 ? "no steps recorded yet" : formatTable(["STEP", "KIND", "STATUS", "ATTEMPT", "DURATION", "RESULT"], stepRows(steps)));
  return lines.join("\n");
}

/** The steps' rows; a step whose id an earlier step already had (a loop) shows its key, the one name `rerun --from-step` takes for it. */
function stepRows(steps: StepInfo[]): string[][] {
  const seen = new Set<string>();
  return steps.map((step) => {
    const name = seen.has(step.id) ? `${step.id} (key ${step.key})` : step.id;
    seen.add(step.id);
    const result = step.error !== undefined ? step.error.message : step.output !== undefined ? shortJson(step.output, 60) : "";
    return [escapeControl(name), step.kind, step.status, String(step.attempt + 1), span(step.startedAt, step.endedAt), escapeControl(result)];
  });
}
