import { createServer } from "node:net";

/**
 * Resolves when `host:port` can be listened on, by listening once and closing, and otherwise
 * fails with a message that says what to do. `stepwise dev` and `stepwise start` call it before
 * they create a data dir or connect to anything, so that a taken port leaves nothing behind.
 * Port 0 (any free port) always passes.
 */
export async function assertPortFree(options: { host: string; port: number }): Promise<void> {
  if (options.port === 0) return;
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: options.host, port: options.port, exclusive: true }, () => resolve());
    });
  } catch (error) {
    throw new Error(describeListenError(error, options));
  }
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

function describeListenError(error: unknown, { host, port }: { host: string; port: number }): string {
  switch ((error as NodeJS.ErrnoException).code) {
    case "EADDRINUSE":
      return `port ${port} on ${host} is already in use; stop what listens there or pass another --port (0 picks a free one)`;
    case "EACCES":
      return `port ${port} on ${host} needs privileges this process lacks; pass a port above 1023 with --port`;
    case "EADDRNOTAVAIL":
      return `cannot listen on ${host}:${port}: ${host} is not an address of this machine`;
    default:
      return `cannot listen on ${host}:${port}: ${error instanceof Error ? error.message : String(error)}`;
  }
}
