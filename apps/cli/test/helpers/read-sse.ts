/** One server-sent event as a client receives it. */
export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/**
 * Reads a `text/event-stream` response event by event (the SSE wire format: `field: value`
 * lines, a blank line ends an event, `:` starts a comment), as `EventSource` would. Leaving the
 * loop early cancels the body: what the server sent after that event is never seen, as when a
 * browser's connection drops. (The same reader as `packages/server/test/helpers/sse.ts`, which
 * this package cannot import.)
 */
export async function* readSse(response: Response): AsyncGenerator<SseEvent> {
  if (!response.body) return;
  const decoder = new TextDecoder();
  let buffer = "";
  let current: Partial<SseEvent> = {};
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline = buffer.indexOf("\n");
    while (newline >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
      newline = buffer.indexOf("\n");
      if (line === "") {
        if (current.data !== undefined) yield { id: current.id, event: current.event ?? "message", data: current.data };
        current = {};
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "data") current.data = current.data === undefined ? value : `${current.data}\n${value}`;
      else if (field === "id") current.id = value;
      else if (field === "event") current.event = value;
    }
  }
}
