export type SessionBody =
  | string
  | Uint8Array
  | ArrayBuffer
  | Blob
  | URLSearchParams
  | FormData
  | ReadableStream<Uint8Array>;

export interface RequestOptions {
  /** Sent as JSON with `content-type: application/json`. */
  json?: unknown;
  /**
   * A request body. A stream can be sent only once, so such a request is never retried; pass a
   * function that returns a fresh body to keep retries and the re-authentication retry.
   */
  body?: SessionBody | (() => SessionBody);
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Whether the request may be repeated (default: GET, HEAD, PUT, DELETE, OPTIONS). */
  idempotent?: boolean;
  /** Send the access token (default true); false for public routes. */
  auth?: boolean;
  /** Resolve with the Response (body unread) instead of its parsed content. */
  raw?: boolean;
}
