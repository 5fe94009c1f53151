// Sends the note's first example event to a running `stepwise dev`: `pnpm send`.
import { stepwise } from "./client.js";

const { ids } = await stepwise.send({ name: "user.created", data: { userId: "123" } });
console.log(`sent user.created: ${ids.join(", ")}`);
for (const id of ids) {
  for (const run of await stepwise.runs(id)) {
    const ended = await stepwise.waitForRun(run.id, { timeout: "3s" }).catch(() => run);
    console.log(`  ${run.functionId}: ${ended.status} ${JSON.stringify(ended.output ?? null)}`);
  }
}
