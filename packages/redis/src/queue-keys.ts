/**
 * Key layout of one queue, for prefix `P` (Default: "stepwise"):
 *
 * | key                  | type   | holds                                                              |
 * |----------------------|--------|--------------------------------------------------------------------|
 * | `{P}:queue:schedule` | ZSET   | one member per run, scored by `availableAt` (epoch ms); the member |
 * |                      |        | is `sortKey + runId`, `sortKey` = 16 hex of the priority (higher   |
 * |                      |        | first) + 16 hex of an arrival number                               |
 * | `{P}:queue:items`    | HASH   | runId → `sortKey + item JSON`                                       |
 * | `{P}:queue:arrivals` | STRING | counter (INCR) giving each enqueued item its arrival number (and   |
 * |                      |        | each slot lease its token)                                         |
 * | `{P}:queue:slot:<h>` | ZSET   | the leases of slot key `h` (SHA-1 of the key): token → lease end   |
 * | `{P}:queue:blocked:<h>` | ZSET | members (as in the schedule) waiting for a slot of `h`, score 0, so |
 * |                      |        | in member (queue) order                                            |
 * | `{P}:queue:blocked-runs` | HASH | runId → `h` of the key it waits on                               |
 * | `{P}:queue:sweeps`   | ZSET   | `h` of keys with waiting items → their earliest lease end          |
 * | `{P}:queue:limits`   | HASH   | `h` → the slot limit of the items waiting on it                    |
 * | `{P}:queue:throttle:<h>` | STRING | the throttle key's next on-pace start (GCRA TAT), expiring once |
 * |                      |        | it is in the past                                                  |
 * | `{P}:queue:ratelimit:<h>` | STRING | the rate-limit key's TAT (GCRA, a burst of `limit`), expiring |
 * |                      |        | once it is in the past                                             |
 *
 * Channel (not a key; PUBLISH is not slotted): `P:queue:notify`.
 *
 * Every key carries the hash tag `{P}`, so all keys of one queue hash to one slot and each Lua
 * script touches a single slot: the scripts run unchanged on Redis Cluster (one queue lives on
 * one shard; several queues can use several prefixes).
 *
 * Why one ZSET rather than a delayed ZSET plus a ready ZSET by priority: the queue's order is
 * exactly the in-memory queue's, `availableAt`, then higher priority, then arrival. A ZSET
 * orders equal scores by member bytes, so putting priority and arrival at the front of the
 * member, as fixed-width hex, makes the ZSET's own order that triple: the head (`ZRANGE 0 0`,
 * O(log n)) is the next item, and the same head tells when the next delayed item falls due.
 * Nothing has to move from a delayed set to a ready set when time passes (that promotion is
 * O(k log n) for k items falling due, and needs a "now" at which to run), and every operation
 * stays O(log n) however many items are delayed.
 *
 * @internal
 */
export interface QueueKeys {
  schedule: string;
  items: string;
  arrivals: string;
  blockedRuns: string;
  sweeps: string;
  limits: string;
  /** Prefix of the per-slot-key keys (`slot:<h>`, `blocked:<h>`). */
  base: string;
  notifyChannel: string;
}

/** The keys and the notify channel of the queue under `prefix`. @internal */
export function queueKeys(prefix: string): QueueKeys {
  if (/[{}]/.test(prefix)) throw new TypeError(`Redis queue prefix must not contain braces (it becomes the hash tag): ${prefix}`);
  return {
    schedule: `{${prefix}}:queue:schedule`,
    items: `{${prefix}}:queue:items`,
    arrivals: `{${prefix}}:queue:arrivals`,
    blockedRuns: `{${prefix}}:queue:blocked-runs`,
    sweeps: `{${prefix}}:queue:sweeps`,
    limits: `{${prefix}}:queue:limits`,
    base: `{${prefix}}:queue:`,
    notifyChannel: `${prefix}:queue:notify`,
  };
}

/** Length of the sort key at the front of every schedule member and items value. @internal */
export const SORT_KEY_LENGTH = 32;

/**
 * 16 hex characters that sort (as bytes) in descending order of `priority`, for any finite
 * number: the IEEE 754 bits of `-priority`, with the sign bit flipped for positives and all
 * bits flipped for negatives, which makes the byte order the numeric order.
 *
 * @internal
 */
export function encodePriority(priority = 0): string {
  const descending = Number.isNaN(priority) || priority === 0 ? 0 : -priority;
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, descending);
  let high = view.getUint32(0);
  let low = view.getUint32(4);
  if (high & 0x80000000) {
    high = ~high >>> 0;
    low = ~low >>> 0;
  } else {
    high = (high | 0x80000000) >>> 0;
  }
  return high.toString(16).padStart(8, "0") + low.toString(16).padStart(8, "0");
}
