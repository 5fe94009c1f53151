// Functions the Postgres + Redis bench's worker processes run.
import { Stepwise } from "@stepwise/core";

export const stepwise = new Stepwise({ id: "bench" });

export const oneStep = stepwise.createFunction({ id: "one-step" }, { event: "bench/one-step" }, async ({ event, step }) => {
  return step.run("only", () => event.data["n"] as number);
});
