import { createTestEngine, type TestEngine } from "@stepwise/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { calls, stepwise } from "../src/functions.js";
import { imageWork } from "../src/services.js";

describe("quickstart", () => {
  let engine: TestEngine;
  beforeEach(async () => {
    calls.length = 0;
    engine = await createTestEngine({ clients: [stepwise] });
  });
  afterEach(() => engine.close());

  async function runsOf(eventId: string) {
    const runs = await stepwise.runs(eventId);
    return Object.fromEntries(runs.map((run) => [run.functionId, run.id]));
  }

  it("send of user.created starts on-user-created, user-onboarding and delayed-email", async () => {
    const { ids } = await stepwise.send({ name: "user.created", data: { userId: "123" } });
    expect(ids).toHaveLength(1);
    const runs = await runsOf(ids[0] as string);
    expect(Object.keys(runs).sort()).toEqual(["delayed-email", "on-user-created", "user-onboarding"]);
  });

  it("on-user-created fetches the user", async () => {
    const { ids } = await stepwise.send({ name: "user.created", data: { userId: "7" } });
    const run = await engine.result((await runsOf(ids[0] as string))["on-user-created"] as string);
    expect(run.output).toEqual({ greeted: "User 7" });
  });

  it("user-onboarding runs its 3 steps once each, in order", async () => {
    const { ids } = await stepwise.send({ name: "user.created", data: { userId: "42" } });
    const run = await engine.result((await runsOf(ids[0] as string))["user-onboarding"] as string);
    expect(run.output).toEqual({ userId: "42", profileId: "profile-42" });
    const steps = (await engine.store.listSteps(run.id)).map((step) => step.id).sort();
    expect(steps).toEqual(["create-profile", "get-user", "send-welcome-email"]);
    expect(calls.filter((call) => call.startsWith("db.createProfile") || call.startsWith("email.send:user-42"))).toEqual([
      "db.createProfile:42",
      "email.send:user-42@example.com:Welcome!",
    ]);
  });

  it("retry-example succeeds on the third attempt of its step", async () => {
    const { runIds } = await engine.sendAndGetRuns({ name: "api/call.requested" });
    for (let index = 0; index < 3; index++) await engine.advance("10s");
    const run = await engine.result(runIds[0] as string);
    expect(run.output).toEqual({ ok: true, attempts: 3 });
    expect(calls.filter((call) => call.startsWith("flakyApi"))).toEqual(["flakyApi:1", "flakyApi:2", "flakyApi:3"]);
  });

  it("delayed-email sends nothing for 7 days, then the follow-up", async () => {
    const { ids } = await stepwise.send({ name: "user.created", data: { userId: "9" } });
    const runId = (await runsOf(ids[0] as string))["delayed-email"] as string;
    await engine.advance("6d");
    expect((await engine.getRun(runId))?.status).toBe("sleeping");
    expect(calls).not.toContain("email.send:user-9@example.com:How is it going?");
    await engine.advance("1d");
    expect((await engine.result(runId)).status).toBe("completed");
    expect(calls).toContain("email.send:user-9@example.com:How is it going?");
  });

  it("daily-report runs at 9:00 UTC every day", async () => {
    await engine.advance("8h59m");
    expect(await engine.store.listRuns({ functionId: "quickstart/daily-report" })).toHaveLength(0);
    await engine.advance("1m");
    await engine.advance("1d");
    const runs = await engine.store.listRuns({ functionId: "quickstart/daily-report" });
    expect(runs).toHaveLength(2);
    for (const run of runs) expect((await engine.result(run.id)).output).toEqual({ orders: 42, revenue: 1234.5 });
  });

  it("limited-concurrency processes at most 5 images at once", async () => {
    imageWork.maxInFlight = 0;
    const { runIds } = await engine.sendAndGetRuns(Array.from({ length: 15 }, (_, index) => ({ name: "image/uploaded", data: { imageId: `img-${index}` } })));
    for (const runId of runIds) expect((await engine.result(runId)).status).toBe("completed");
    expect(imageWork.maxInFlight).toBe(5);
  });
});
