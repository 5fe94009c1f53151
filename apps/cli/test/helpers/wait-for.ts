/**
 * Polls `check` until it answers a value (not `undefined`), and answers that value; throws
 * naming `what` after `timeoutMs`. For conditions in child processes or databases, which
 * `expect.poll` cannot name in its failure.
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    // The pause between two looks, not a wait for the condition.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
