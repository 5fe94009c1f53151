import type { Queue } from "./ports/queue.js";
import type { RunStore } from "./ports/run-store.js";

/**
 * `Engine.checkReady`: a read of the store and of the queue, at most `timeoutMs` each, answered
 * as `"ok"` or what went wrong (for readiness probes, `GET /ready`).
 */
export async function checkReady(store: RunStore, queue: Queue, timeoutMs: number): Promise<{ store: string; queue: string }> {
  const probe = async (what: string, read: () => Promise<unknown>): Promise<string> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`no answer from the ${what} within ${timeoutMs} ms`), timeoutMs);
    });
    try {
      return await Promise.race([read().then(() => "ok"), late]);
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    } finally {
      clearTimeout(timer);
    }
  };
  const [storeState, queueState] = await Promise.all([probe("store", () => store.now()), probe("queue", () => queue.size())]);
  return { store: storeState, queue: queueState };
}
