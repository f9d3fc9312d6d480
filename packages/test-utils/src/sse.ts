import { get, type IncomingMessage } from 'node:http';

/** What {@link sseClient} saw. */
export interface SseClient {
  /** Event ids in arrival order. */
  readonly ids: number[];
  /** `performance.now()` of each event's arrival. */
  readonly arrivals: number[];
  /** Every `retry:` value received. */
  readonly retries: number[];
  connections(): number;
  stop(): void;
}

/**
 * An EventSource-style reader over node:http: parses `id:`/`retry:` fields, and when the
 * stream ends (or fails) reconnects after `retry` ms with `Last-Event-ID`, as browsers do.
 *
 * @example
 * ```ts
 * const client = sseClient('http://127.0.0.1:8080/events');
 * // … later
 * client.stop();
 * expect(client.ids).toEqual(contiguous);
 * ```
 */
export function sseClient(
  url: string,
  options: { readonly initialRetryMs?: number } = {},
): SseClient {
  const ids: number[] = [];
  const arrivals: number[] = [];
  const retries: number[] = [];
  let connections = 0;
  let lastId: number | null = null;
  let retry = options.initialRetryMs ?? 3000;
  let stopped = false;
  let current: IncomingMessage | undefined;
  const reconnect = () => {
    if (!stopped) setTimeout(open, retry);
  };
  function open() {
    if (stopped) return;
    connections++;
    const headers: Record<string, string> =
      lastId === null ? {} : { 'Last-Event-ID': String(lastId) };
    const req = get(url, { headers, agent: false }, (res) => {
      current = res;
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        buf += d;
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) {
              lastId = Number(line.slice(4));
              ids.push(lastId);
              arrivals.push(performance.now());
            } else if (line.startsWith('retry: ')) {
              retry = Number(line.slice(7));
              retries.push(retry);
            }
          }
        }
      });
      res.on('end', reconnect);
      res.on('error', () => {});
    });
    req.on('error', reconnect);
  }
  open();
  return {
    ids,
    arrivals,
    retries,
    connections: () => connections,
    stop() {
      stopped = true;
      current?.destroy();
    },
  };
}
