import { inspect } from "node:util";
import type { LifecycleEvent } from "@stepwise/engine";

type Style = "gray" | "cyan" | "blue" | "magenta" | "green" | "yellow" | "red" | "bold";

/** Options of {@link createPrinter}. */
export interface PrinterOptions {
  /** (Default: `process.stdout.write`) */
  write?: (line: string) => void;
  /** Colour the output. (Default: stdout is a TTY and `NO_COLOR` is unset) */
  color?: boolean;
}

/** Turns lifecycle events into one readable line each, as `stepwise dev` prints them. */
export function createPrinter(options: PrinterOptions = {}): (event: LifecycleEvent) => void {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const color = options.color ?? (Boolean(process.stdout.isTTY) && !process.env["NO_COLOR"]);
  // ANSI codes from Node's own table (util.styleText ignores colour off a TTY on some Node 20 lines).
  // Every piece of text is escaped as it is painted: names, ids, messages and data come from
  // events and user code, and raw control characters would drive the terminal.
  const paint = (style: Style, text: string) => {
    const codes = inspect.colors[style];
    const safe = escapeControl(text);
    return color && codes ? `\u001b[${codes[0]}m${safe}\u001b[${codes[1]}m` : safe;
  };
  const raw = (text: string) => escapeControl(text);
  const line = (kind: string, style: Style, text: string) =>
    write(`${paint("gray", new Date().toISOString().slice(11, 23))} ${paint(style, kind.padEnd(5))} ${text}`);

  return (event) => {
    switch (event.type) {
      case "event-received":
        return line(
          "event",
          "cyan",
          `${paint("bold", event.event.name)} ${paint("gray", event.event.id)}${event.duplicate ? paint("yellow", " (duplicate id, ignored)") : ""} ${raw(shortJson(event.event.data))}`,
        );
      case "run-created":
        return line("run", "blue", `${paint("bold", event.functionId)} ${paint("gray", event.runId)} queued`);
      case "run-started":
        return line(
          "run",
          "blue",
          `${paint("bold", event.functionId)} ${paint("gray", event.runId)} started${event.attempt > 0 ? ` (attempt ${event.attempt + 1})` : ""}${event.memoizedSteps > 0 ? `, ${event.memoizedSteps} steps from memo` : ""}`,
        );
      case "step-started":
        return;
      case "step-ended": {
        const mark = event.status === "completed" ? paint("green", "✓") : event.status === "retrying" ? paint("yellow", "↻") : paint("red", "✗");
        const error = event.error ? ` ${paint("red", event.error.message)}` : "";
        return line(
          "step",
          "magenta",
          `${paint("bold", event.functionId)} ${mark} ${raw(event.stepId)} ${paint("gray", `${event.kind} ${event.durationMs} ms`)}${event.attempt > 0 ? ` attempt ${event.attempt + 1}` : ""}${error}`,
        );
      }
      case "run-suspended":
        return line(
          "run",
          "blue",
          `${paint("bold", event.functionId)} ${paint("gray", event.runId)} ${paint("yellow", "suspended")}: ${raw(event.reasons.join("; "))}`,
        );
      case "run-retrying":
        return line(
          "run",
          "yellow",
          `${paint("bold", event.functionId)} ${paint("gray", event.runId)} will retry at ${new Date(event.wakeAt).toISOString()}: ${raw(event.error.message)}`,
        );
      case "run-completed":
        return line(
          "run",
          "green",
          `${paint("bold", event.functionId)} ${paint("gray", event.runId)} ${paint("green", "completed")} ${raw(shortJson(event.output))}`,
        );
      case "run-failed":
        return line("run", "red", `${paint("bold", event.functionId)} ${paint("gray", event.runId)} ${paint("red", "failed")}: ${raw(event.error.message)}`);
      case "run-aborted":
        return line("run", "yellow", `${paint("bold", event.functionId)} ${paint("gray", event.runId)} pass stopped: ${raw(event.reason)}`);
      case "run-skipped":
        return line("run", "yellow", `${paint("bold", event.functionId)} ${paint("gray", event.runId)} ${paint("yellow", "skipped")}: ${raw(event.reason)}`);
      case "run-cancelled":
        return line("run", "yellow", `${paint("bold", event.functionId)} ${paint("gray", event.runId)} ${paint("yellow", "cancelled")}: ${raw(event.reason)}`);
      case "cron-tick":
        return line(
          "cron",
          "cyan",
          `${paint("bold", event.functionId)} tick ${new Date(event.scheduledFor).toISOString()}${event.runId ? "" : " (already started elsewhere)"}`,
        );
      case "engine-error":
        return line("error", "red", raw(`${event.context}: ${event.error instanceof Error ? event.error.message : String(event.error)}`));
    }
  };
}

/** `value` as JSON on one line, cut to `max` characters with `...` (undefined prints as `null`). */
export function shortJson(value: unknown, max = 120): string {
  const json = JSON.stringify(value) ?? "null";
  return json.length > max ? `${json.slice(0, max - 3)}...` : json;
}

/**
 * Control characters (C0, DEL, C1), line and paragraph separators and bidirectional overrides,
 * written as `\uXXXX`: printed raw, an event name could clear the screen, move the cursor or
 * forge a log line.
 */
export function escapeControl(text: string): string {
  return text.replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this escapes
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
