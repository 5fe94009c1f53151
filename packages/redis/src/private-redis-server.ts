import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";

/** A `redis-server` of this test's own, for tests that flush or restart the server. */
export interface PrivateRedisServer {
  url: string;
  port: number;
  /** Kills the server (SIGKILL: no shutdown save), as a crash would. */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
}

/** A TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/**
 * Starts `redis-server` (Debian's `redis-server` package; scripts/setup-services.sh installs it)
 * on a free port, without persistence. Flushing the shared test server would break the other
 * test files running beside this one.
 */
export async function startPrivateRedisServer(): Promise<PrivateRedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const server: PrivateRedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async kill() {
      if (!child || child.exitCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGKILL");
      await exited;
    },
    async start() {
      child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      child.stdout?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
      });
      const spawned = child;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`redis-server did not start on port ${port}:\n${output}`)), 5000);
        spawned.on("error", (error) => {
          clearTimeout(timer);
          reject(new Error(`cannot run redis-server (install Debian's redis-server, see scripts/setup-services.sh): ${error.message}`));
        });
        spawned.stdout?.on("data", () => {
          if (output.includes("Ready to accept connections")) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
    },
  };
  await server.start();
  return server;
}
