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
 * An item waiting for a concurrency slot (in `blockedRuns`) stays as it is.
 *
 * KEYS: schedule, items, arrivals, blockedRuns. ARGV: now, channel, then per item: runId,
 * availableAt, priority key, item JSON. Returns how many items were added or moved earlier.
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
    elseif redis.call('HEXISTS', KEYS[4], runId) == 1 then
      -- Queued already, waiting for a concurrency slot: it comes back when one frees.
      keep = true
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
 * Lua shared by the dequeue and release scripts: `unblock(h)` moves items waiting on the slot
 * key of hash `h` back to the schedule (due now, same member, so same order), as many as the
 * key has free slots after dropping expired leases, and keeps the key's sweep time (its
 * earliest lease end, when expiry would free a slot) while items still wait. Needs `now`,
 * `base` (the `{P}:queue:` prefix of the per-key keys) and KEYS schedule, blockedRuns, sweeps,
 * limits at the indexes given.
 */
const UNBLOCK_LUA = (schedule: number, blockedRuns: number, sweeps: number, limits: number) => `
local function unblock(h)
  local slot = base .. 'slot:' .. h
  local waiting = base .. 'blocked:' .. h
  redis.call('ZREMRANGEBYSCORE', slot, '-inf', now)
  local limit = tonumber(redis.call('HGET', KEYS[${limits}], h) or '1')
  local free = limit - redis.call('ZCARD', slot)
  local moved = 0
  if free > 0 then
    local first = redis.call('ZRANGE', waiting, 0, free - 1, 'WITHSCORES')
    for i = 1, #first, 2 do
      redis.call('ZREM', waiting, first[i])
      redis.call('HDEL', KEYS[${blockedRuns}], string.sub(first[i], ${SORT_KEY_LENGTH + 1}))
      -- Back at its own time (due already), so that it keeps its place among due items.
      redis.call('ZADD', KEYS[${schedule}], math.min(tonumber(first[i + 1]), now), first[i])
      moved = moved + 1
    end
  end
  if redis.call('ZCARD', waiting) == 0 then
    redis.call('ZREM', KEYS[${sweeps}], h)
    redis.call('HDEL', KEYS[${limits}], h)
  else
    local head = redis.call('ZRANGE', slot, 0, 0, 'WITHSCORES')
    redis.call('ZADD', KEYS[${sweeps}], head[2] or now, h)
  end
  return moved
end
`;

/**
 * Lua shared by the dequeue and acquire scripts, over `slots` (a list of `{ key, limit }`):
 * `full_slot(slots)` drops each key's expired leases and answers the hash and limit of the
 * first key with no free slot (nil when all have one); `lease(slots, token)` gives `token` a
 * lease in each until `now + ttl`. Needs `now`, `ttl` and `base`.
 */
const SLOT_LUA = `
local function full_slot(slots)
  for _, slot in ipairs(slots) do
    local h = redis.sha1hex(slot.key)
    local key = base .. 'slot:' .. h
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    if redis.call('ZCARD', key) >= slot.limit then return h, slot.limit end
  end
  return nil
end
local function lease(slots, token)
  for _, slot in ipairs(slots) do redis.call('ZADD', base .. 'slot:' .. redis.sha1hex(slot.key), now + ttl, token) end
end
`;

/**
 * Removes and returns up to `max` items from the head that are available at `now`, in queue
 * order. Members whose items entry is gone or belongs to a newer enqueue (a partial loss of
 * keys) are dropped on the way; each pass removes a member, so the loop ends.
 *
 * An item with `concurrency` is handed out only when every one of its slot keys has a free
 * slot: it takes one in each (a lease until `now + ttl`, held by a token returned with it).
 * An item with `throttle` books its start on the key's pace (GCRA, the TAT in
 * `throttle:<h>`); one whose turn is later goes back to the schedule at that time.
 * Otherwise it moves to the waiting set of the first full key (kept in `items`, named in
 * `blockedRuns`), where nothing looks at it until that key frees a slot: a release, or the
 * expiry of a lease (the key's time in `sweeps`, which each call checks first).
 *
 * KEYS: schedule, items, arrivals, blockedRuns, sweeps, limits. ARGV: now, max, ttl, base.
 * Returns `{0}` when empty, `{1, availableAt}` when nothing is due before that time (the head,
 * or the earliest sweep), `{2, 1 if another item is due, item JSON, token, ...}` when items
 * were taken (token `""` for an item without slots).
 */
const DEQUEUE_LUA = `
local now = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local base = ARGV[4]
${UNBLOCK_LUA(1, 4, 5, 6)}
${SLOT_LUA}
for _, h in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, 50)) do unblock(h) end
local taken = {}
-- Items moved to a waiting set count against a budget, so that one call stays short.
local budget = 1000
while #taken < 2 * max and budget > 0 do
  local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #head == 0 or tonumber(head[2]) > now then break end
  local member = head[1]
  local runId = string.sub(member, ${SORT_KEY_LENGTH + 1})
  local value = redis.call('HGET', KEYS[2], runId)
  redis.call('ZREM', KEYS[1], member)
  if value and string.sub(value, 1, ${SORT_KEY_LENGTH}) == string.sub(member, 1, ${SORT_KEY_LENGTH}) then
    local json = string.sub(value, ${SORT_KEY_LENGTH + 1})
    local token = ''
    local full = nil
    local fullLimit = nil
    local slots = nil
    local item = nil
    local paced = false
    if string.find(json, '"concurrency"', 1, true) or string.find(json, '"throttle"', 1, true) then item = cjson.decode(json) end
    if item and item.concurrency then
      slots = item.concurrency
      full, fullLimit = full_slot(slots)
    end
    if not full and item and item.throttle then
      -- GCRA: book the start's turn; one too early waits in the schedule until it (once: the
      -- booking is its turn, so the item goes back without its throttle).
      local rule = item.throttle
      local interval = rule.periodMs / rule.limit
      local pace = base .. 'throttle:' .. redis.sha1hex(rule.key)
      local arrival = math.max(tonumber(redis.call('GET', pace) or '0'), now)
      redis.call('SET', pace, string.format('%.3f', arrival + interval), 'PX', math.ceil(arrival + interval - now) + 1)
      local startAt = math.max(now, arrival - rule.burst * interval)
      if startAt > now then
        paced = true
        budget = budget - 1
        item.throttle = nil
        redis.call('HSET', KEYS[2], runId, string.sub(value, 1, ${SORT_KEY_LENGTH}) .. cjson.encode(item))
        redis.call('ZADD', KEYS[1], startAt, member)
      end
    end
    if paced then
      -- Waiting for its turn in the schedule.
    elseif full then
      budget = budget - 1
      -- Scored by its time in the schedule, so that a priority's advance keeps its place.
      redis.call('ZADD', base .. 'blocked:' .. full, head[2], member)
      redis.call('HSET', KEYS[4], runId, full)
      redis.call('HSET', KEYS[6], full, fullLimit)
      local earliest = redis.call('ZRANGE', base .. 'slot:' .. full, 0, 0, 'WITHSCORES')
      local sweep = redis.call('ZSCORE', KEYS[5], full)
      if earliest[2] and (not sweep or tonumber(earliest[2]) < tonumber(sweep)) then redis.call('ZADD', KEYS[5], earliest[2], full) end
    else
      if slots then
        token = runId .. ':' .. redis.call('INCR', KEYS[3])
        lease(slots, token)
      end
      redis.call('HDEL', KEYS[2], runId)
      taken[#taken + 1] = json
      taken[#taken + 1] = token
    end
  end
end
if #taken == 0 then
  local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local sweep = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
  local at = head[2]
  if sweep[2] and (not at or tonumber(sweep[2]) < tonumber(at)) then at = sweep[2] end
  if budget <= 0 and (not at or tonumber(at) > now) then at = ARGV[1] end
  if not at then return {0} end
  return {1, at}
end
local following = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local more = 0
if following[2] and tonumber(following[2]) <= now then more = 1 end
return {2, more, unpack(taken)}
`;

/**
 * Gives back slots (a token's lease in each of its keys) and moves items waiting on those keys
 * back to the schedule, as many as are now free. Publishes on the notify channel when it moved
 * any, so that a waiting worker takes them.
 *
 * KEYS: schedule, items, blockedRuns, sweeps, limits. ARGV: now, channel, base, then per slot:
 * key, token.
 */
const RELEASE_LUA = `
local now = tonumber(ARGV[1])
local base = ARGV[3]
${UNBLOCK_LUA(1, 3, 4, 5)}
local moved = 0
for i = 4, #ARGV, 2 do
  local h = redis.sha1hex(ARGV[i])
  redis.call('ZREM', base .. 'slot:' .. h, ARGV[i + 1])
  if redis.call('EXISTS', base .. 'blocked:' .. h) == 1 then moved = moved + unblock(h) end
end
if moved > 0 then redis.call('PUBLISH', ARGV[2], 'enqueued') end
return moved
`;

/**
 * Extends leases still held (`ZADD XX`: a lease that expired and was dropped is not revived,
 * since its slot may have gone to another run meanwhile). ARGV: until, base, then per slot:
 * key, token.
 */
const RENEW_LUA = `
local base = ARGV[2]
for i = 3, #ARGV, 2 do redis.call('ZADD', base .. 'slot:' .. redis.sha1hex(ARGV[i]), 'XX', ARGV[1], ARGV[i + 1]) end
return 0
`;

/**
 * Takes slots for runs that start at once, outside the queue (eager start): a run gets a
 * lease in every one of its keys, or none, when each has a free slot and no run waits for it.
 * Queued runs come first: while any item is due in the schedule (a slot just freed moves the
 * runs that waited for it there), none is taken. ARGV: now, ttl, base, then per run: runId,
 * number of slots, then per slot: key, limit. KEYS: arrivals (the token counter), schedule.
 * Returns a token per run (`""`: not taken).
 */
const ACQUIRE_LUA = `
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local base = ARGV[3]
${SLOT_LUA}
local tokens = {}
local backlog = #redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1) > 0
local i = 4
while i <= #ARGV do
  local runId = ARGV[i]
  local count = tonumber(ARGV[i + 1])
  local slots = {}
  for j = 0, count - 1 do slots[#slots + 1] = { key = ARGV[i + 2 + 2 * j], limit = tonumber(ARGV[i + 3 + 2 * j]) } end
  local free = not backlog and not full_slot(slots)
  -- Runs waiting for a slot of a key come first.
  for _, slot in ipairs(slots) do
    if free and redis.call('EXISTS', base .. 'blocked:' .. redis.sha1hex(slot.key)) == 1 then free = false end
  end
  local token = ''
  if free then
    token = runId .. ':' .. redis.call('INCR', KEYS[1])
    lease(slots, token)
  end
  tokens[#tokens + 1] = token
  i = i + 2 + 2 * count
end
return tokens
`;

/** What one dequeue attempt found: `tokens[i]` holds the slots of `json[i]` (`""`: none). @internal */
export type DequeueAttempt = { kind: "empty" } | { kind: "later"; availableAt: number } | { kind: "items"; json: string[]; tokens: string[]; more: boolean };

/** A slot lease to give back or renew: its key and holder token. @internal */
export type SlotLease = readonly [key: string, token: string];

/** The queue's Lua scripts, bound to one client and one key layout. @internal */
export interface QueueScripts {
  /** `entries` are `[runId, availableAt, priorityKey, json]`. Returns how many were added or moved earlier. */
  enqueue(now: number, entries: ReadonlyArray<readonly [string, string, string, string]>): Promise<number>;
  /** Takes up to `max` due items, in queue order, with slots leased for `ttl` ms. */
  dequeue(now: number, max: number, ttl: number): Promise<DequeueAttempt>;
  /** Gives back slot leases, moving runs that waited for them back to the schedule. */
  release(now: number, leases: readonly SlotLease[]): Promise<number>;
  /** Takes every slot of each run (`[runId, slots]`) or none, for `ttl` ms; answers a token per run (`""`: not taken). */
  acquire(now: number, ttl: number, runs: ReadonlyArray<readonly [string, ReadonlyArray<{ key: string; limit: number }>]>): Promise<string[]>;
  /** Extends slot leases still held until `until`. */
  renew(until: number, leases: readonly SlotLease[]): Promise<number>;
  /** Counts events against rate limits: `[key, limit, periodMs]` each; answers within (true) or over. */
  rateLimit(now: number, checks: ReadonlyArray<readonly [string, number, number]>): Promise<boolean[]>;
}

/**
 * Counts events against rate limits (GCRA with a burst of `limit`: the key's TAT in
 * `ratelimit:<h>`), in order; an event over its limit changes nothing. ARGV: now, base, then per
 * event: key, limit, periodMs. Returns 1 (within) or 0 (over) per event.
 */
const RATE_LIMIT_LUA = `
local now = tonumber(ARGV[1])
local base = ARGV[2]
local answers = {}
for i = 3, #ARGV, 3 do
  local limit = tonumber(ARGV[i + 1])
  local period = tonumber(ARGV[i + 2])
  local interval = period / limit
  local key = base .. 'ratelimit:' .. redis.sha1hex(ARGV[i])
  local arrival = math.max(tonumber(redis.call('GET', key) or '0'), now)
  if arrival - now > period - interval then
    answers[#answers + 1] = 0
  else
    redis.call('SET', key, string.format('%.3f', arrival + interval), 'PX', math.ceil(arrival + interval - now) + 1)
    answers[#answers + 1] = 1
  end
end
return answers
`;

// Command names carry a version, so that a client shared with another version of this package
// never runs the other version's script under the same name.
const ENQUEUE_COMMAND = "stepwiseQueueEnqueueV2";
const DEQUEUE_COMMAND = "stepwiseQueueDequeueV3";
const RELEASE_COMMAND = "stepwiseQueueReleaseV1";
const RENEW_COMMAND = "stepwiseQueueRenewV1";
const RATE_LIMIT_COMMAND = "stepwiseQueueRateLimitV1";
const ACQUIRE_COMMAND = "stepwiseQueueAcquireV1";

type ScriptCommands = {
  [ENQUEUE_COMMAND](...args: string[]): Promise<number>;
  [DEQUEUE_COMMAND](...args: string[]): Promise<Array<number | string>>;
  [RELEASE_COMMAND](...args: string[]): Promise<number>;
  [RENEW_COMMAND](...args: string[]): Promise<number>;
  [RATE_LIMIT_COMMAND](...args: string[]): Promise<number[]>;
  [ACQUIRE_COMMAND](...args: string[]): Promise<string[]>;
};

/**
 * Defines the scripts on `redis` (`defineCommand`: EVALSHA, falling back to EVAL when the
 * server lost its script cache, e.g. after a restart) and binds them to `keys`.
 *
 * @internal
 */
export function defineQueueScripts(redis: Redis, keys: QueueKeys): QueueScripts {
  const commands = redis as unknown as Partial<ScriptCommands> & ScriptCommands;
  if (typeof commands[ENQUEUE_COMMAND] !== "function") redis.defineCommand(ENQUEUE_COMMAND, { lua: ENQUEUE_LUA, numberOfKeys: 4 });
  if (typeof commands[DEQUEUE_COMMAND] !== "function") redis.defineCommand(DEQUEUE_COMMAND, { lua: DEQUEUE_LUA, numberOfKeys: 6 });
  if (typeof commands[RELEASE_COMMAND] !== "function") redis.defineCommand(RELEASE_COMMAND, { lua: RELEASE_LUA, numberOfKeys: 5 });
  if (typeof commands[RENEW_COMMAND] !== "function") redis.defineCommand(RENEW_COMMAND, { lua: RENEW_LUA, numberOfKeys: 0 });
  if (typeof commands[RATE_LIMIT_COMMAND] !== "function") redis.defineCommand(RATE_LIMIT_COMMAND, { lua: RATE_LIMIT_LUA, numberOfKeys: 0 });
  if (typeof commands[ACQUIRE_COMMAND] !== "function") redis.defineCommand(ACQUIRE_COMMAND, { lua: ACQUIRE_LUA, numberOfKeys: 2 });
  return {
    enqueue(now, entries) {
      return commands[ENQUEUE_COMMAND](keys.schedule, keys.items, keys.arrivals, keys.blockedRuns, String(now), keys.notifyChannel, ...entries.flat());
    },
    async dequeue(now, max, ttl) {
      const reply = await commands[DEQUEUE_COMMAND](
        keys.schedule,
        keys.items,
        keys.arrivals,
        keys.blockedRuns,
        keys.sweeps,
        keys.limits,
        String(now),
        String(max),
        String(ttl),
        keys.base,
      );
      if (reply[0] === 2) {
        const json: string[] = [];
        const tokens: string[] = [];
        for (let index = 2; index < reply.length; index += 2) {
          json.push(String(reply[index]));
          tokens.push(String(reply[index + 1] ?? ""));
        }
        return { kind: "items", json, tokens, more: reply[1] === 1 };
      }
      if (reply[0] === 1) return { kind: "later", availableAt: Number(reply[1]) };
      return { kind: "empty" };
    },
    release(now, leases) {
      return commands[RELEASE_COMMAND](
        keys.schedule,
        keys.items,
        keys.blockedRuns,
        keys.sweeps,
        keys.limits,
        String(now),
        keys.notifyChannel,
        keys.base,
        ...leases.flat(),
      );
    },
    async acquire(now, ttl, runs) {
      const args = runs.flatMap(([runId, slots]) => [runId, String(slots.length), ...slots.flatMap((slot) => [slot.key, String(slot.limit)])]);
      return (await commands[ACQUIRE_COMMAND](keys.arrivals, keys.schedule, String(now), String(ttl), keys.base, ...args)).map(String);
    },
    renew(until, leases) {
      return commands[RENEW_COMMAND](String(until), keys.base, ...leases.flat());
    },
    async rateLimit(now, checks) {
      const answers = await commands[RATE_LIMIT_COMMAND](
        String(now),
        keys.base,
        ...checks.flatMap(([key, limit, periodMs]) => [key, String(limit), String(periodMs)]),
      );
      return answers.map((answer) => answer === 1);
    },
  };
}
