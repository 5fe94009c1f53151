import { decodeTime, isValid } from "ulid";
import { describe, expect, it } from "vitest";
import { newEventId, newRunId } from "../src/router.js";

describe("run and event ids", () => {
  it("are prefixed ULIDs carrying the time they were made", () => {
    const before = Date.now();
    const [run, event] = [newRunId(), newEventId()];
    expect(run).toMatch(/^run_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(event).toMatch(/^evt_[0-9A-HJKMNP-TV-Z]{26}$/);
    for (const id of [run.slice(4), event.slice(4)]) {
      expect(isValid(id)).toBe(true);
      expect(decodeTime(id)).toBeGreaterThanOrEqual(before);
      expect(decodeTime(id)).toBeLessThanOrEqual(Date.now());
    }
  });

  it("do not repeat across many refills of the random buffer, and use every character of the alphabet", () => {
    const ids = Array.from({ length: 20_000 }, () => newRunId());
    expect(new Set(ids).size).toBe(ids.length);
    const randomParts = ids.map((id) => id.slice(14)).join("");
    expect(new Set(randomParts).size).toBe(32);
  });
});
