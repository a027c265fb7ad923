/**
 * The dashboard's event stream (`/events?QUERY`, server-sent events) read as a page would: its
 * first event is a snapshot of what the page shows.
 */

/** Opens /events?QUERY and resolves with its first snapshot; the stream stays open until `close()`. */
export async function openStream(origin: string, query: string): Promise<{ snapshot: Record<string, unknown>; close(): void }> {
  const controller = new AbortController();
  const response = await fetch(`${origin}/events?${query}`, { signal: controller.signal });
  if (response.status !== 200) throw new Error(`/events answered ${response.status}`);
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the event stream ended before its snapshot');
      buffer += decoder.decode(value, { stream: true });
      const match = /event: snapshot\ndata: (.*)\n\n/.exec(buffer);
      if (match) return { snapshot: JSON.parse(match[1]!) as Record<string, unknown>, close: () => controller.abort() };
    }
  } catch (error) {
    controller.abort();
    throw error;
  }
}

/** The first snapshot of /events?QUERY, then the stream is closed. */
export async function snapshot(origin: string, query: string): Promise<Record<string, unknown>> {
  const stream = await openStream(origin, query);
  stream.close();
  return stream.snapshot;
}
