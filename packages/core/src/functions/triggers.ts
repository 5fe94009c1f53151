/** Starts a function when an event with this name arrives and, if given, `if` (CEL over `event`) is true. */
export interface EventTrigger<TName extends string = string> {
  event: TName;
  /** A CEL expression over `event`, e.g. `"event.data.plan == 'pro'"`. (Default: none, every event matches) */
  if?: string;
}

/** Starts a function on a schedule: a cron expression (5 or 6 fields) in a time zone. */
export interface CronTrigger {
  cron: string;
  /** An IANA time zone, e.g. `"Europe/Lisbon"`. (Default: `"UTC"`) */
  timezone?: string;
}

/** What starts a function. */
export type Trigger = EventTrigger | CronTrigger;

/** Name of the event a cron trigger delivers to its function. */
export const CRON_EVENT_NAME = "stepwise/scheduled.timer";
/** Name of the event a function receives when started by `invoke`. */
export const INVOKE_EVENT_NAME = "stepwise/function.invoked";
/** Name of the event sent when a function's run fails; `onFailure` handlers receive it. */
export const FAILURE_EVENT_NAME = "stepwise/function.failed";

/** Narrows a trigger to an {@link EventTrigger}. */
export function isEventTrigger(trigger: Trigger): trigger is EventTrigger {
  return "event" in trigger;
}

/** Narrows a trigger to a {@link CronTrigger}. */
export function isCronTrigger(trigger: Trigger): trigger is CronTrigger {
  return "cron" in trigger;
}
