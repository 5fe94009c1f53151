import { describe, expectTypeOf, it } from "vitest";
import { z } from "zod";
import type { StepwiseEvent } from "../events/event.js";
import { Stepwise } from "./stepwise.js";

describe("types", () => {
  const stepwise = new Stepwise({ id: "app", schemas: { "user.created": z.object({ userId: z.string() }) } });

  it("types event.data from the schema and step.run output by inference", () => {
    const fn = stepwise.createFunction({ id: "f" }, { event: "user.created" }, async ({ event, step }) => {
      expectTypeOf(event.data.userId).toEqualTypeOf<string>();
      const user = await step.run("get", () => ({ id: 1, at: new Date() }));
      expectTypeOf(user).toEqualTypeOf<{ id: number; at: string }>();
      const none = await step.run("nothing", async () => {});
      expectTypeOf(none).toEqualTypeOf<null>();
      const reply = await step.waitForEvent("w", { event: "email.replied", timeout: "1d" });
      expectTypeOf(reply).toEqualTypeOf<StepwiseEvent<"email.replied"> | null>();
      return { count: 3 };
    });
    const other = stepwise.createFunction({ id: "g", triggers: [{ event: "user.created" }, { cron: "0 9 * * *" }] }, async ({ event, step }) => {
      expectTypeOf(event.name).toEqualTypeOf<"user.created" | "stepwise/scheduled.timer">();
      const child = await step.invoke("call", { function: fn });
      expectTypeOf(child).toEqualTypeOf<{ count: number }>();
    });
    expectTypeOf(other).not.toBeAny();
  });

  it("types invoke's result and send's payload", () => {
    const fn = stepwise.createFunction({ id: "h" }, { event: "x" }, async () => 42);
    expectTypeOf(stepwise.invoke(fn, {})).resolves.toEqualTypeOf<number>();
    // @ts-expect-error userId must be a string
    void stepwise.send({ name: "user.created", data: { userId: 1 } });
  });
});

describe("types without schemas", () => {
  it("leaves event.data loose", () => {
    const stepwise = new Stepwise({ id: "plain" });
    stepwise.createFunction({ id: "f" }, { event: "user.created" }, async ({ event }) => {
      expectTypeOf(event.data["anything"]).toBeAny();
    });
  });
});
