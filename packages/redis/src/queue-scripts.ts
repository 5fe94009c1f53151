import type { Redis } from "ioredis";
import { type QueueKeys, SORT_KEY_LENGTH } from "./queue-keys.js";

// Numbers that matter (availableAt) travel as the caller's strings and go to ZADD as such:
// Lua's tostring keeps 14 significant digits, which would round fractional milliseconds.

/**
 * Adds items, keeping one per run at the earlier `availableAt` (an existing item with an equal
 * or earlier time stays as it is, priority and function id included). Publishes on the notify
 * channel when an item is available now or becomes the new earliest, so that waiting workers
 * dequeue it or re-arm their timer.
 *
 * KEYS: schedule, items, arrivals. ARGV: now, channel, then per item: runId, availableAt,
 * priority key, item JSON. Returns how many items were added or moved earlier.
 */
const ENQUEUE_LUA = `
local now = tonumber(ARGV[1])
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local earliest = head[2] and tonumber(head[2])
local notify = false
local added = 0
for i = 3, #ARGV, 4 do
  local runId = ARGV[i]
  local at = tonumber(ARGV[i + 1])
  local keep = false
  local existing = redis.call('HGET', KEYS[2], runId)
  if existing then
    local member = string.sub(existing, 1, ${SORT_KEY_LENGTH}) .. runId
    local existingAt = redis.call('ZSCORE', KEYS[1], member)
    if existingAt and tonumber(existingAt) <= at then
      keep = true
    elseif existingAt then
      redis.call('ZREM', KEYS[1], member)
    end
  end
  if not keep then
    local sortKey = ARGV[i + 2] .. string.format('%016x', redis.call('INCR', KEYS[3]))
    redis.call('ZADD', KEYS[1], ARGV[i + 1], sortKey .. runId)
    redis.call('HSET', KEYS[2], runId, sortKey .. ARGV[i + 3])
    added = added + 1
    if at <= now or earliest == nil or at < earliest then notify = true end
    if earliest == nil or at < earliest then earliest = at end
  end
end
if notify then redis.call('PUBLISH', ARGV[2], 'enqueued') end
return added
`;

/**
 * Removes and returns up to `max` items from the head that are available at `now`, in queue
 * order. Members whose items entry is gone or belongs to a newer enqueue (a partial loss of
 * keys) are dropped on the way; each pass removes a member, so the loop ends.
 *
 * KEYS: schedule, items. ARGV: now, max.
 * Returns `{0}` when empty, `{1, availableAt}` when the head is not yet due,
 * `{2, 1 if another item is due, item JSON...}` when items were taken.
 */
const DEQUEUE_LUA = `
local now = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local taken = {}
while #taken < max do
  local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #head == 0 then break end
  if tonumber(head[2]) > now then
    if #taken == 0 then return {1, head[2]} end
    break
  end
  local member = head[1]
  local runId = string.sub(member, ${SORT_KEY_LENGTH + 1})
  local value = redis.call('HGET', KEYS[2], runId)
  redis.call('ZREM', KEYS[1], member)
  if value and string.sub(value, 1, ${SORT_KEY_LENGTH}) == string.sub(member, 1, ${SORT_KEY_LENGTH}) then
    redis.call('HDEL', KEYS[2], runId)
    taken[#taken + 1] = string.sub(value, ${SORT_KEY_LENGTH + 1})
  end
end
if #taken == 0 then return {0} end
local following = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local more = 0
if following[2] and tonumber(following[2]) <= now then more = 1 end
return {2, more, unpack(taken)}
`;

/** What one dequeue attempt found. @internal */
export type DequeueAttempt = { kind: "empty" } | { kind: "later"; availableAt: number } | { kind: "items"; json: string[]; more: boolean };

/** The queue's Lua scripts, bound to one client and one key layout. @internal */
export interface QueueScripts {
  /** `entries` are `[runId, availableAt, priorityKey, json]`. Returns how many were added or moved earlier. */
  enqueue(now: number, entries: ReadonlyArray<readonly [string, string, string, string]>): Promise<number>;
  /** Takes up to `max` due items, in queue order. */
  dequeue(now: number, max: number): Promise<DequeueAttempt>;
}

// Command names carry a version, so that a client shared with another version of this package
// never runs the other version's script under the same name.
const ENQUEUE_COMMAND = "stepwiseQueueEnqueueV1";
const DEQUEUE_COMMAND = "stepwiseQueueDequeueV2";

type ScriptCommands = {
  [ENQUEUE_COMMAND](...args: string[]): Promise<number>;
  [DEQUEUE_COMMAND](...args: string[]): Promise<Array<number | string>>;
};

/**
 * Defines the scripts on `redis` (`defineCommand`: EVALSHA, falling back to EVAL when the
 * server lost its script cache, e.g. after a restart) and binds them to `keys`.
 *
 * @internal
 */
export function defineQueueScripts(redis: Redis, keys: QueueKeys): QueueScripts {
  const commands = redis as unknown as Partial<ScriptCommands> & ScriptCommands;
  if (typeof commands[ENQUEUE_COMMAND] !== "function") redis.defineCommand(ENQUEUE_COMMAND, { lua: ENQUEUE_LUA, numberOfKeys: 3 });
  if (typeof commands[DEQUEUE_COMMAND] !== "function") redis.defineCommand(DEQUEUE_COMMAND, { lua: DEQUEUE_LUA, numberOfKeys: 2 });
  return {
    enqueue(now, entries) {
      return commands[ENQUEUE_COMMAND](keys.schedule, keys.items, keys.arrivals, String(now), keys.notifyChannel, ...entries.flat());
    },
    async dequeue(now, max) {
      const reply = await commands[DEQUEUE_COMMAND](keys.schedule, keys.items, String(now), String(max));
      if (reply[0] === 2) return { kind: "items", json: reply.slice(2).map(String), more: reply[1] === 1 };
      if (reply[0] === 1) return { kind: "later", availableAt: Number(reply[1]) };
      return { kind: "empty" };
    },
  };
}
