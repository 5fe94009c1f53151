/** One server-sent event as a client receives it. */
export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/**
 * Reads a `text/event-stream` response event by event (the SSE wire format: `field: value`
 * lines, a blank line ends an event, `:` starts a comment), as `EventSource` would.
 */
export async function* readSse(response: Response): AsyncGenerator<SseEvent> {
  if (!response.body) return;
  const decoder = new TextDecoder();
  let buffer = "";
  let current: Partial<SseEvent> & { data?: string } = {};
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

/**
 * Opens `url` as an SSE stream and collects `message` events until `until` says stop (or the
 * stream ends); then aborts the request. Answers the events and the last id seen.
 */
export async function collectSse(
  url: string,
  options: { headers?: Record<string, string>; until: (events: SseEvent[]) => boolean },
): Promise<{ status: number; events: SseEvent[]; all: SseEvent[]; body?: unknown }> {
  const abort = new AbortController();
  const response = await fetch(url, { headers: options.headers, signal: abort.signal });
  if (!response.headers.get("content-type")?.startsWith("text/event-stream")) {
    return { status: response.status, events: [], all: [], body: await response.json().catch(() => undefined) };
  }
  const events: SseEvent[] = [];
  const all: SseEvent[] = [];
  try {
    for await (const event of readSse(response)) {
      all.push(event);
      if (event.event === "message") events.push(event);
      if (options.until(events)) break;
    }
  } catch (error) {
    if (!abort.signal.aborted) throw error;
  } finally {
    abort.abort();
  }
  return { status: response.status, events, all };
}
