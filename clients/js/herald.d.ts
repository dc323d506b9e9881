// Types for herald.js (@herald/client), written by hand beside the module.

/** The defaults of the reconnection options, in milliseconds. */
export declare const defaults: Readonly<{
  /** First reconnection delay until the server sends `retry:`: 3000. */
  retry: number;
  /** No reconnection waits longer than this (before jitter): 30000. */
  maxRetry: number;
  /** Each attempt in a row multiplies the delay by this: 2. */
  backoffFactor: number;
  /** A delay is drawn uniformly from [d × (1 − jitter), d]: 0.5. */
  jitter: number;
}>;

/** How a source reaches the hub. */
export type ShareMode = "worker" | "tabs" | "none";

export interface HeraldEventSourceInit {
  /** Sends cookies (the hub's token cookie) cross-origin, as `EventSource`'s option. */
  withCredentials?: boolean;
  /** Request headers, e.g. `{ Authorization: "Bearer …" }`. */
  headers?: HeadersInit;
  /**
   * Called before each connection; its result is sent as
   * `Authorization: Bearer …`, and it is called again a little before the
   * token's `exp` (read from the JWT, unverified) to reconnect with a new
   * one, so the hub never ends the stream for an expired token. A source
   * with a token callback has its own connection.
   */
  token?: () => string | Promise<string>;
  /** Resume after this id (sent as `Last-Event-ID`). A source with one has its own connection unless `share` is set. */
  lastEventId?: string;
  /**
   * `"auto"` (default): a `SharedWorker` when the page and this script are
   * same-origin, else `BroadcastChannel` with a Web Locks leader, else one
   * connection per source. `"worker"` / `"tabs"` ask for one (falling back
   * when unavailable); `"none"` or `false`: a connection of its own.
   */
  share?: "auto" | ShareMode | boolean;
  /** The script a SharedWorker runs (default: this module's own URL). */
  workerUrl?: string | URL;
  /** Base reconnection delay in ms until the server sends `retry:` (default 3000). */
  retry?: number;
  /** Cap on the reconnection delay in ms (default 30000). */
  maxRetry?: number;
  /** Growth of the delay per failed attempt in a row (default 2). */
  backoffFactor?: number;
  /** Fraction of the delay taken off at random, 0 to 1 (default 0.5). */
  jitter?: number;
  /** A `fetch` to use instead of the global one (the source is then not shared). */
  fetch?: typeof fetch;
}

/** An `error` event. */
export declare class HeraldErrorEvent extends Event {
  /** The HTTP status, when a response came (e.g. 401, 503); undefined for a network error or a cut stream. */
  readonly status: number | undefined;
  /** True when the source is CLOSED and will not reconnect. */
  readonly fatal: boolean;
  /** `"status"`, `"type"` (a 200 that is not `text/event-stream`), `"network"` or `"end"` (the body ended). */
  readonly reason: "status" | "type" | "network" | "end" | undefined;
  /** The wait before the next attempt, in ms, when not fatal. */
  readonly delay: number | undefined;
  /** The network error's message, if any. */
  readonly message: string | undefined;
}

/** Herald's in-band gap report: the hub did not have `lastEventId` and replays from `resumedFrom`. */
export declare class GapEvent extends Event {
  /** The id the stream resumed from, which the hub no longer has (trimmed or unknown). */
  readonly lastEventId: string;
  /** Where the replay starts: `"earliest"`, every event retained. */
  readonly resumedFrom: string;
  /** The report as sent, JSON. */
  readonly data: string;
}

export interface HeraldEventSourceEventMap {
  open: Event;
  message: MessageEvent<string>;
  error: HeraldErrorEvent;
  gap: GapEvent;
}

/** `EventSource` over fetch, with headers, token refresh, backoff, gap events and sharing across tabs. */
export declare class HeraldEventSource extends EventTarget {
  constructor(url: string | URL, init?: HeraldEventSourceInit);
  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSED: 2;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSED: 2;
  /** The absolute URL of the stream. */
  readonly url: string;
  readonly withCredentials: boolean;
  readonly readyState: 0 | 1 | 2;
  /** The id of the last event received (not in the EventSource API). */
  readonly lastEventId: string;
  /** How this source reaches the hub. */
  readonly share: ShareMode;
  onopen: ((this: HeraldEventSource, ev: Event) => any) | null;
  onmessage: ((this: HeraldEventSource, ev: MessageEvent<string>) => any) | null;
  onerror: ((this: HeraldEventSource, ev: HeraldErrorEvent) => any) | null;
  ongap: ((this: HeraldEventSource, ev: GapEvent) => any) | null;
  /** Closes the stream for good. */
  close(): void;
  addEventListener<K extends keyof HeraldEventSourceEventMap>(
    type: K,
    listener: (this: HeraldEventSource, ev: HeraldEventSourceEventMap[K]) => any,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /** A custom event type (`event:` in the stream): a `MessageEvent`. */
  addEventListener(
    type: string,
    listener: (this: HeraldEventSource, ev: MessageEvent<string>) => any,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof HeraldEventSourceEventMap>(
    type: K,
    listener: (this: HeraldEventSource, ev: HeraldEventSourceEventMap[K]) => any,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: (this: HeraldEventSource, ev: MessageEvent<string>) => any,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | EventListenerOptions): void;
}

export { HeraldEventSource as EventSource };
export default HeraldEventSource;

/** One event the parser dispatched. */
export interface ParsedEvent {
  /** The `event:` type, or `"message"`. */
  type: string;
  data: string;
  /** The last event ID string after this event (carried over when it had no `id:`). */
  lastEventId: string;
  /** This event's own `id:` field, or null when it had none. */
  id: string | null;
}

/** The WHATWG event-stream parser, incremental and without I/O. */
export declare class Parser {
  constructor(init?: {
    onEvent?: (event: ParsedEvent) => void;
    onRetry?: (ms: number) => void;
    lastEventId?: string;
  });
  /** The last event ID string: set at each dispatch (even without data), kept across events. */
  readonly lastEventId: string;
  /** Bytes as they arrive, split anywhere. */
  feed(chunk: Uint8Array | string): void;
  /** The end of the body: the unfinished event is discarded. */
  finish(): void;
}

/** The `exp` claim of a JWT in ms since the epoch, read without verifying; null if absent. */
export declare function tokenExpiry(token: string): number | null;
