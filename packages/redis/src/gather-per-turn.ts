/**
 * Wraps `send` so that the calls made in one turn of the event loop go out as one: each call's
 * entries are gathered, sent together once the turn ends (`setImmediate`), and every caller's
 * promise settles with that one send. A call with no entries resolves at once.
 *
 * @internal
 */
export function gatherPerTurn<T>(send: (entries: T[]) => Promise<void>): (entries: T[]) => Promise<void> {
  let gathered: Array<{ entries: T[]; resolve: () => void; reject: (error: unknown) => void }> = [];
  const flush = () => {
    const turn = gathered;
    gathered = [];
    send(turn.flatMap((call) => call.entries)).then(
      () => {
        for (const call of turn) call.resolve();
      },
      (error: unknown) => {
        for (const call of turn) call.reject(error);
      },
    );
  };
  return (entries) => {
    if (entries.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      if (gathered.length === 0) setImmediate(flush);
      gathered.push({ entries, resolve, reject });
    });
  };
}
