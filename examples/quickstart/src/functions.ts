// Every example of the Inngest note this project grew from, on Stepwise.
import { stepwise } from "./client.js";
import { calls, db, email, flakyApi, imageWork } from "./services.js";

export { stepwise };

/** Runs whenever a user is created. */
export const onUserCreated = stepwise.createFunction({ id: "on-user-created" }, { event: "user.created" }, async ({ event, step }) => {
  const user = await step.run("fetch-user", () => db.getUser(event.data.userId));
  return { greeted: user.name };
});

/** A 3-step onboarding flow: each step is checkpointed and retried on its own. */
export const userOnboarding = stepwise.createFunction({ id: "user-onboarding" }, { event: "user.created" }, async ({ event, step }) => {
  const user = await step.run("get-user", () => db.getUser(event.data.userId));
  const profile = await step.run("create-profile", () => db.createProfile(user));
  await step.run("send-welcome-email", () => email.send(user.email, "Welcome!"));
  return { userId: user.id, profileId: profile.profileId };
});

const callFlakyApi = flakyApi(2);

/** Retries a failing step up to 3 times with backoff. */
export const retryExample = stepwise.createFunction({ id: "retry-example", retries: 3 }, { event: "api/call.requested" }, async ({ step }) => {
  return step.run("call-flaky-api", () => callFlakyApi());
});

/** Sends an email a week after sign-up; the run sleeps durably, holding no worker. */
export const delayedEmail = stepwise.createFunction({ id: "delayed-email" }, { event: "user.created" }, async ({ event, step }) => {
  await step.sleep("wait-7-days", "7d");
  const user = await step.run("get-user", () => db.getUser(event.data.userId));
  return step.run("send-follow-up", () => email.send(user.email, "How is it going?"));
});

/** A report every day at 9:00 UTC. */
export const dailyReport = stepwise.createFunction({ id: "daily-report" }, { cron: "0 9 * * *" }, async ({ event, step }) => {
  const since = new Date(event.ts - 24 * 60 * 60 * 1000);
  const sales = await step.run("collect-sales", () => db.salesSince(since));
  await step.run("email-report", () => email.send("team@example.com", `Daily report: ${sales.orders} orders`));
  return sales;
});

/** At most 5 runs of this function execute at once. */
export const limitedConcurrency = stepwise.createFunction(
  { id: "limited-concurrency", concurrency: { limit: 5 } },
  { event: "image/uploaded" },
  async ({ event, step }) => {
    return step.run("process-image", async () => {
      imageWork.inFlight++;
      imageWork.maxInFlight = Math.max(imageWork.maxInFlight, imageWork.inFlight);
      calls.push(`process-image:${event.data.imageId}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
      imageWork.inFlight--;
      return { imageId: event.data.imageId, processed: true };
    });
  },
);

export { calls };
