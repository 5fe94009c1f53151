import type { QueueItem } from "../ports/queue.js";

/** Earliest a run deferred for its function's limit comes back from the queue (ms). */
export const MIN_DEFER_MS = 250;
/** Latest a run deferred for its function's limit comes back from the queue (ms). */
export const MAX_DEFER_MS = 30_000;
/**
 * A pass's expected length before any of the function's passes was measured (ms). Low on
 * purpose: a run deferred too briefly comes back early and is deferred again (one more queue
 * round trip), while one deferred too long leaves the worker idle with a backlog waiting.
 */
const INITIAL_PASS_MS = 1;

/**
 * The per-function concurrency slots of one worker, and the runs it holds because their
 * function is at its limit ("parked": started here, in order, as slots free).
 *
 * Parking is bounded (`maxParked` runs in all): a worker never pulls a backlog of runs it cannot
 * run into its memory, where other workers could not take them. Runs beyond the bound go back to
 * the queue, each with a time at which it can plausibly start: {@link FunctionSlots.deferUntil}
 * spaces them by the function's measured pass length divided by its limit, so that a backlog of
 * 10,000 runs of a limit-1 function comes back a few at a time instead of all at once, every time.
 */
export class FunctionSlots {
  private readonly used = new Map<string, number>();
  // Per function, parked runs by run id (a Map keeps insertion order: first parked, first started).
  private readonly parked = new Map<string, Map<string, QueueItem>>();
  private parkedTotal = 0;
  // Per function: mean pass length (ms, moving average) and the last deferral time handed out.
  private readonly passMs = new Map<string, number>();
  private readonly nextTurn = new Map<string, number>();

  /**
   * @param limitOf The function's `concurrency.limit` in this worker, or `undefined` for none.
   * @param maxParked Most runs held here at once that cannot run yet.
   */
  constructor(
    private readonly limitOf: (functionId: string) => number | undefined,
    readonly maxParked: number,
  ) {}

  /** Whether a run of the function could take a slot now. */
  hasRoom(functionId: string): boolean {
    const limit = this.limitOf(functionId);
    return limit === undefined || (this.used.get(functionId) ?? 0) < limit;
  }

  /** Takes a slot of the function; false when it is at its limit. */
  take(functionId: string): boolean {
    if (!this.hasRoom(functionId)) return false;
    if (this.limitOf(functionId) !== undefined) this.used.set(functionId, (this.used.get(functionId) ?? 0) + 1);
    return true;
  }

  /**
   * Gives a slot back. With `startNext` (Default: true), answers the function's next parked run,
   * which takes the slot at once (the caller starts it), or `undefined`.
   */
  release(functionId: string, startNext = true): QueueItem | undefined {
    if (this.limitOf(functionId) === undefined) return undefined;
    this.used.set(functionId, Math.max(0, (this.used.get(functionId) ?? 0) - 1));
    if (!startNext) return undefined;
    const waiting = this.parked.get(functionId);
    const next = waiting?.values().next().value;
    if (!waiting || !next) {
      // Nothing waits here: the function's deferral schedule starts afresh.
      this.nextTurn.delete(functionId);
      return undefined;
    }
    waiting.delete(next.runId);
    if (waiting.size === 0) this.parked.delete(functionId);
    this.parkedTotal--;
    this.take(functionId);
    return next;
  }

  /**
   * Holds a run whose function is at its limit. False when the bound is reached: the caller gives
   * the run back to the queue (see {@link FunctionSlots.deferUntil}). A run parked twice (two
   * queue items for it) is held once.
   */
  park(item: QueueItem): boolean {
    let waiting = this.parked.get(item.functionId);
    if (waiting?.has(item.runId)) return true;
    if (this.parkedTotal >= this.maxParked) return false;
    if (!waiting) {
      waiting = new Map();
      this.parked.set(item.functionId, waiting);
    }
    waiting.set(item.runId, item);
    this.parkedTotal++;
    return true;
  }

  /** Runs held here that cannot run yet. */
  get parkedCount(): number {
    return this.parkedTotal;
  }

  /** Takes every parked run out (on stop: they go back to the queue for other workers). */
  drain(): QueueItem[] {
    const items = [...this.parked.values()].flatMap((waiting) => [...waiting.values()]);
    this.parked.clear();
    this.parkedTotal = 0;
    return items;
  }

  /** Records how long a pass of the function took, for spacing deferrals. */
  recordPass(functionId: string, ms: number): void {
    const mean = this.passMs.get(functionId);
    this.passMs.set(functionId, mean === undefined ? ms : mean * 0.8 + ms * 0.2);
  }

  /**
   * When a run of the function, sent back to the queue because the function is at its limit,
   * should come back: one turn (mean pass length / limit) after the previous deferral, between
   * {@link MIN_DEFER_MS} and {@link MAX_DEFER_MS} from `now`.
   */
  deferUntil(functionId: string, now: number): number {
    const limit = this.limitOf(functionId) ?? 1;
    const turn = (this.passMs.get(functionId) ?? INITIAL_PASS_MS) / limit;
    const at = Math.min(now + MAX_DEFER_MS, Math.max(now + MIN_DEFER_MS, (this.nextTurn.get(functionId) ?? now) + turn));
    this.nextTurn.set(functionId, at);
    return Math.round(at);
  }
}
