import { describe, expect, it } from "vitest";
import { createPrinter } from "../src/printer.js";

describe("createPrinter", () => {
  it("prints one readable line per event, run and step, without colour when asked", () => {
    const lines: string[] = [];
    const print = createPrinter({ write: (line) => lines.push(line), color: false });
    print({ type: "event-received", event: { id: "evt_1", name: "user.created", data: { userId: "1" }, ts: 0 }, duplicate: false });
    print({ type: "run-started", runId: "run_1", functionId: "onboarding", attempt: 0, memoizedSteps: 2 });
    print({
      type: "step-ended",
      runId: "run_1",
      functionId: "onboarding",
      stepId: "send-email",
      kind: "run",
      attempt: 1,
      status: "retrying",
      durationMs: 12,
      error: { name: "Error", message: "smtp down" },
    });
    print({ type: "run-completed", runId: "run_1", functionId: "onboarding", output: { ok: true } });
    const body = lines.map((line) => line.slice(13));
    expect(body).toEqual([
      'event user.created evt_1 {"userId":"1"}',
      "run   onboarding run_1 started, 2 steps from memo",
      "step  onboarding ↻ send-email run 12 ms attempt 2 smtp down",
      'run   onboarding run_1 completed {"ok":true}',
    ]);
    expect(lines.every((line) => /^\d{2}:\d{2}:\d{2}\.\d{3} /.test(line))).toBe(true);
  });

  it("colours output for a terminal", () => {
    const lines: string[] = [];
    createPrinter({ write: (line) => lines.push(line), color: true })({
      type: "run-failed",
      runId: "r",
      functionId: "f",
      error: { name: "Error", message: "x" },
    });
    expect(lines[0]).toContain("\u001b[31m");
  });

  it("writes control characters in names, ids, messages and data as escapes, so no event drives the terminal", () => {
    const lines: string[] = [];
    const print = createPrinter({ write: (line) => lines.push(line), color: true });
    const hostile = "x\u001b[2J\u001b[H\r\n12:00:00.000 run   forged completed\u009b31m\u202e";
    print({ type: "event-received", event: { id: "evt_1", name: hostile, data: { note: hostile }, ts: 0 }, duplicate: false });
    print({
      type: "step-ended",
      runId: "r",
      functionId: "f",
      stepId: hostile,
      kind: "run",
      attempt: 0,
      status: "failed",
      durationMs: 1,
      error: { name: "Error", message: hostile },
    });
    print({ type: "run-failed", runId: "r", functionId: hostile, error: { name: "Error", message: hostile } });
    print({ type: "engine-error", context: hostile, error: new Error(hostile) });
    expect(lines).toHaveLength(4);
    for (const line of lines) {
      // Only the printer's own colour codes remain: ESC followed by "[<digits>m".
      // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what must not be there
      expect(line.replace(/\u001b\[\d+m/g, "")).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
      expect(line).toContain("\\u001b[2J");
    }
  });
});
