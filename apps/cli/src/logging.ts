import type { Logger } from "@stepwise/core";
import type { LifecycleListener } from "@stepwise/engine";
import { pino } from "pino";
import pretty from "pino-pretty";

/** How `stepwise start|worker` write logs: one JSON object per line, or readable lines. */
export type LogFormat = "json" | "pretty";

/** Fields whose values never reach a log line (connection strings, keys, secrets). */
const REDACTED = ["*.password", "*.authorization", "*.apiKey", "*.key", "*.secret", "*.token", "*.databaseUrl", "*.redisUrl", "*.url"];

/** `--log-format`, else `STEPWISE_LOG_FORMAT`, else pretty on a terminal and JSON otherwise (a container, a log shipper). */
export function resolveLogFormat(flag?: string): LogFormat {
  const chosen = flag ?? process.env["STEPWISE_LOG_FORMAT"] ?? (process.stdout.isTTY ? "pretty" : "json");
  if (chosen !== "json" && chosen !== "pretty") throw new Error(`log format must be json or pretty, got ${JSON.stringify(chosen)}`);
  return chosen;
}

/**
 * A pino logger for the CLI: JSON lines on stdout, or pino-pretty's lines; level from
 * `STEPWISE_LOG_LEVEL` (Default: info). Secrets under well-known field names are redacted.
 */
export function createCliLogger(format: LogFormat, level = process.env["STEPWISE_LOG_LEVEL"] ?? "info"): Logger {
  const options = { level, base: { service: "stepwise" }, redact: { paths: REDACTED, censor: "[redacted]" } };
  const logger = format === "json" ? pino(options) : pino(options, pretty({ colorize: Boolean(process.stdout.isTTY), sync: true }));
  return adapt(logger);
}

/** pino's signature as the engine's `Logger` (object first, message second; `child` keeps both). */
function adapt(logger: pino.Logger): Logger {
  const call = (level: "debug" | "info" | "warn" | "error") => (objectOrMessage: unknown, message?: string) => {
    if (typeof objectOrMessage === "string" && message === undefined) logger[level](objectOrMessage);
    else logger[level](objectOrMessage as object, message);
  };
  return {
    debug: call("debug"),
    info: call("info"),
    warn: call("warn"),
    error: call("error"),
    child: (bindings) => adapt(logger.child(bindings)),
  };
}

/**
 * Logs the engine's lifecycle as structured lines with `runId`, `stepId` and `functionId`
 * (JSON mode's replacement for the printer): run ends at info (failures at error), failed and
 * retried steps at warn, the rest at debug.
 */
export function logLifecycle(logger: Logger): LifecycleListener {
  return (event) => {
    switch (event.type) {
      case "event-received":
        return logger.debug({ eventId: event.event.id, eventName: event.event.name, duplicate: event.duplicate }, "event received");
      case "run-created":
      case "run-started":
      case "run-suspended":
      case "step-started":
        return logger.debug({ ...event }, event.type.replace("-", " "));
      case "step-ended": {
        const fields = {
          runId: event.runId,
          functionId: event.functionId,
          stepId: event.stepId,
          kind: event.kind,
          attempt: event.attempt,
          durationMs: event.durationMs,
        };
        if (event.status === "failed" || event.status === "retrying")
          return logger.warn({ ...fields, status: event.status, error: event.error }, `step ${event.status}`);
        return logger.debug({ ...fields, status: event.status }, "step ended");
      }
      case "run-retrying":
        return logger.warn({ runId: event.runId, functionId: event.functionId, attempt: event.attempt, error: event.error }, "run retrying");
      case "run-completed":
        return logger.info({ runId: event.runId, functionId: event.functionId }, "run completed");
      case "run-failed":
        return logger.error({ runId: event.runId, functionId: event.functionId, error: event.error }, "run failed");
      case "run-skipped":
        return logger.info({ runId: event.runId, functionId: event.functionId, reason: event.reason }, "run skipped");
      case "run-cancelled":
        return logger.info({ runId: event.runId, functionId: event.functionId, reason: event.reason }, "run cancelled");
      case "run-aborted":
        return logger.warn({ runId: event.runId, functionId: event.functionId, reason: event.reason }, "run pass aborted");
      case "cron-tick":
        return logger.info({ functionId: event.functionId, scheduledFor: event.scheduledFor, runId: event.runId }, "cron tick");
      case "engine-error":
        return logger.error({ context: event.context, error: event.error instanceof Error ? event.error.message : String(event.error) }, "engine error");
    }
  };
}
