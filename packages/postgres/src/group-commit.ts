/** Options of {@link createGroupCommit}. */
export interface GroupCommitOptions<TItem, TResult> {
  /**
   * Statements of this kind that may be in flight at once. A call made while fewer are in
   * flight goes out at once, alone: an idle store adds no latency. Calls made while all are in
   * flight wait and go out together, in one statement, when one comes back.
   */
  maxInFlight: number;
  /** Most items in one statement; a longer backlog goes out as several. */
  maxBatch: number;
  /** Writes one item: the statement used when it goes out alone. */
  single(item: TItem): Promise<TResult>;
  /**
   * Writes several items in one statement, answering a result per item, in order. When it
   * throws, each item is tried again through `single`, so one bad item (or a deadlock with
   * another batch) fails only its own call.
   */
  batch(items: TItem[]): Promise<TResult[]>;
}

/** How many writes of one kind group commit lets be in flight, and how many go in one statement. */
export type GroupLimits = Pick<GroupCommitOptions<unknown, unknown>, "maxInFlight" | "maxBatch">;

/**
 * The write function of one kind: {@link createGroupCommit} of `single` and `batch` within
 * `limits`, or `single` alone when group commit is off (`limits` undefined).
 */
export function groupedWrite<TItem, TResult>(
  limits: GroupLimits | undefined,
  single: (item: TItem) => Promise<TResult>,
  batch: (items: TItem[]) => Promise<TResult[]>,
): (item: TItem) => Promise<TResult> {
  return limits ? createGroupCommit({ ...limits, single, batch }) : single;
}

interface Pending<TItem, TResult> {
  item: TItem;
  resolve(result: TResult): void;
  reject(error: unknown): void;
}

/**
 * Group commit: many concurrent writes of one kind become one statement and one commit when
 * they arrive together, which is when the database, not our code, limits throughput. Answers
 * the write function; each call settles with its own item's result.
 *
 * Nothing waits on a timer: a batch forms only from calls that would otherwise queue for a
 * connection, so a lone write never waits for company.
 */
export function createGroupCommit<TItem, TResult>(options: GroupCommitOptions<TItem, TResult>): (item: TItem) => Promise<TResult> {
  const { maxInFlight, maxBatch } = options;
  let inFlight = 0;
  let waiting: Array<Pending<TItem, TResult>> = [];

  function send(group: Array<Pending<TItem, TResult>>): void {
    inFlight++;
    const written = group.length === 1 ? writeAlone(group[0] as Pending<TItem, TResult>) : writeTogether(group);
    void written.finally(() => {
      inFlight--;
      if (waiting.length > 0) {
        const next = waiting.slice(0, maxBatch);
        waiting = waiting.slice(maxBatch);
        send(next);
      }
    });
  }

  async function writeAlone(pending: Pending<TItem, TResult>): Promise<void> {
    try {
      pending.resolve(await options.single(pending.item));
    } catch (error) {
      pending.reject(error);
    }
  }

  async function writeTogether(group: Array<Pending<TItem, TResult>>): Promise<void> {
    let results: TResult[];
    try {
      results = await options.batch(group.map((pending) => pending.item));
    } catch {
      // One by one, each with its own answer or error (a write the failed batch did commit,
      // before a lost connection say, is found by the single path's own checks).
      await Promise.all(group.map(writeAlone));
      return;
    }
    for (const [index, pending] of group.entries()) pending.resolve(results[index] as TResult);
  }

  return (item) =>
    new Promise<TResult>((resolve, reject) => {
      const pending = { item, resolve, reject };
      if (inFlight < maxInFlight) send([pending]);
      else waiting.push(pending);
    });
}
