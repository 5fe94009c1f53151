import type { RunStatus } from "@stepwise/core";
import type { Command } from "commander";
import { type ApiFlags, addApiOptions, assertTimeRange, callApi, limitOption, parseWith, statusOption, timeOption } from "./operator-api.js";
import { formatEventPage, formatRunDetail, formatRunPage } from "./operator-format.js";

// `stepwise runs …` and `stepwise events …`: the operators' view of a running server, over its
// HTTP API (through the typed client of @stepwise/core), never its database, so they work
// against any deployment an operator can reach.

interface PageFlags extends ApiFlags {
  since?: number;
  until?: number;
  limit?: number;
  cursor?: string;
}

/** Adds the paging and time filters that `runs list` and `events list` share. */
function addPageOptions(command: Command, noun: string): Command {
  return command
    .option("--since <time>", `only ${noun} from this time on (epoch ms or ISO 8601 date)`, parseWith(timeOption))
    .option("--until <time>", `only ${noun} up to this time (epoch ms or ISO 8601 date)`, parseWith(timeOption))
    .option("--limit <n>", `${noun} per page, 1-500 (default: 50)`, parseWith(limitOption))
    .option("--cursor <cursor>", "continue a listing: the cursor the previous page printed");
}

/** Prints `value` as JSON when `--json` was given, else the text `format` makes of it. */
function print<T>(flags: ApiFlags, value: T, format: (value: T) => string): void {
  console.log(flags.json ? JSON.stringify(value, null, 2) : format(value));
}

/**
 * Registers `stepwise runs list|show|cancel|rerun` and `stepwise events list` on `program`:
 * each calls the server at `--url` (default `STEPWISE_BASE_URL`, else the local server) with the
 * key from `--key` or `STEPWISE_API_KEY`, prints text (or the answer as JSON with `--json`), and
 * fails with one line naming the error code and what to do.
 *
 * @example
 * stepwise runs list --status failed --since 2030-01-01
 * stepwise runs rerun run_01J... --from-step charge
 */
export function operatorCommands(program: Command): void {
  runsCommand(program);
  eventsCommand(program);
}

function runsCommand(program: Command): void {
  const runs = program.command("runs").description("list, show, cancel and rerun runs on a server (API key scope read; control to cancel or rerun)");

  const list = runs
    .command("list")
    .description("list runs, newest first")
    .option("--function <id>", "only runs of this function (its id, or <app>/<function>)")
    .option("--status <status>", "only runs with this status (queued, running, sleeping, waiting, completed, failed, cancelled)", parseWith(statusOption))
    .option("--event <id>", "only runs this event started");
  addApiOptions(addPageOptions(list, "runs")).action(async (flags: PageFlags & { function?: string; status?: RunStatus; event?: string }) => {
    assertTimeRange(flags);
    const page = await callApi(flags, "read", (api) =>
      api.listRuns({
        function: flags.function,
        status: flags.status,
        event: flags.event,
        since: flags.since,
        until: flags.until,
        limit: flags.limit,
        cursor: flags.cursor,
      }),
    );
    print(flags, page, formatRunPage);
  });

  addApiOptions(runs.command("show").description("show a run and its steps").argument("<runId>", "the run's id")).action(
    async (runId: string, flags: ApiFlags) => {
      print(flags, await callApi(flags, "read", (api) => api.getRun(runId)), formatRunDetail);
    },
  );

  addApiOptions(
    runs
      .command("cancel")
      .description("cancel a run that has not ended, and the runs it invoked")
      .argument("<runId>", "the run's id")
      .option("--reason <text>", "why, recorded as the run's error (default: cancelled by an operator)"),
  ).action(async (runId: string, flags: ApiFlags & { reason?: string }) => {
    const result = await callApi(flags, "control", (api) => api.cancelRun(runId, { reason: flags.reason }));
    print(flags, result, ({ run, cancelled }) => {
      if (cancelled.length === 0) return `${run.id} was already cancelled; nothing changed`;
      const invoked = cancelled.filter((id) => id !== run.id);
      return `cancelled ${run.id}${invoked.length > 0 ? ` and the runs it invoked: ${invoked.join(", ")}` : ""}`;
    });
  });

  addApiOptions(
    runs
      .command("rerun")
      .description("start a new run of the same event")
      .argument("<runId>", "the run's id")
      .option("--from-step <step>", "a step id or key of the run: reuse the results recorded before it, execute from it on"),
  ).action(async (runId: string, flags: ApiFlags & { fromStep?: string }) => {
    const run = await callApi(flags, "control", (api) => api.rerun(runId, { fromStep: flags.fromStep }));
    print(flags, { run }, () => {
      const from = flags.fromStep === undefined ? "" : ` from step ${flags.fromStep}`;
      return `started ${run.id} (${run.status}), a rerun of ${runId}${from}\nfollow it: stepwise runs show ${run.id}`;
    });
  });
}

function eventsCommand(program: Command): void {
  const events = program.command("events").description("list the events a server received (API key scope read)");

  const list = events.command("list").description("list events, newest received first").option("--name <name>", "only events with this name");
  addApiOptions(addPageOptions(list, "events")).action(async (flags: PageFlags & { name?: string }) => {
    assertTimeRange(flags);
    const page = await callApi(flags, "read", (api) =>
      api.listEvents({ name: flags.name, since: flags.since, until: flags.until, limit: flags.limit, cursor: flags.cursor }),
    );
    print(flags, page, formatEventPage);
  });
}
