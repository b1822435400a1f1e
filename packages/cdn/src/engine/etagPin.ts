/**
 * The ETag one download is pinned to: the caller's expected one, else the first a range answers
 * with. Every later range must carry the same, or the object changed mid-download.
 */
export class EtagPin {
  #etag: string | undefined;

  constructor(expected?: string) {
    this.#etag = expected;
  }

  /** The pinned ETag, sent as `If-Match`; undefined until the first range answered. */
  get current(): string | undefined {
    return this.#etag;
  }

  /** Pins `etag` if nothing is pinned yet; false when another ETag is. */
  accepts(etag: string): boolean {
    this.#etag ??= etag;
    return this.#etag === etag;
  }
}
