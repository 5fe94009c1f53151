import type { Redis } from "ioredis";

/** One Lua script call (EVAL or EVALSHA) a client sent, and whether Redis has answered it. */
export interface ScriptCall {
  /** The keys it names: the queue's dequeue script names six, its enqueue script four, its release script five. */
  keys: string[];
  answered: boolean;
}

/** What {@link recordScriptCalls} answers. */
export interface ScriptCalls {
  /** Every script call sent since, in order. */
  calls: ScriptCall[];
  /** Dequeue script calls Redis answered (a NOSCRIPT retry counts twice; none here flushes the script cache). */
  dequeues(): number;
  /** Enqueue script calls Redis answered. */
  enqueues(): number;
}

/**
 * Records the script calls `redis` sends from now on (auto-pipelined or not, every command goes
 * through `sendCommand`), so that a test counts round trips and waits for "the queue has looked"
 * instead of timing them or sleeping.
 */
export function recordScriptCalls(redis: Redis): ScriptCalls {
  const calls: ScriptCall[] = [];
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = ((command, ...rest) => {
    if (command.name === "evalsha" || command.name === "eval") {
      const keyCount = Number(command.args[1]);
      const call: ScriptCall = { keys: command.args.slice(2, 2 + keyCount).map(String), answered: false };
      calls.push(call);
      command.promise.then(
        () => {
          call.answered = true;
        },
        () => {},
      );
    }
    return send(command, ...rest);
  }) as Redis["sendCommand"];
  const answered = (keyCount: number) => calls.filter((call) => call.answered && call.keys.length === keyCount).length;
  return { calls, dequeues: () => answered(6), enqueues: () => answered(4) };
}
