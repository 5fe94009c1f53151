import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { stepKey } from "./step-key.js";

const sha1 = (text: string) => createHash("sha1").update(text).digest("hex");

describe("stepKey", () => {
  it("hashes the id, with `:n` for its n-th repeat, the same before and after the cache starts over", () => {
    expect(stepKey("charge", 0)).toBe(sha1("charge"));
    expect(stepKey("charge", 2)).toBe(sha1("charge:2"));
    // More ids than the cache keeps: every key is still the hash of its id.
    for (let index = 0; index < 12_000; index++) expect(stepKey(`step-${index}`, 0)).toBe(sha1(`step-${index}`));
    expect(stepKey("charge", 0)).toBe(sha1("charge"));
    expect(stepKey("charge", 1)).not.toBe(stepKey("charge", 0));
  });
});
