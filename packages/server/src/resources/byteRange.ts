/** A satisfiable single byte range, both ends inclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a `Range` header against a representation of `size` bytes (RFC 9110 §14.1.2). Returns the
 * range, `'unsatisfiable'` (→ 416), or undefined when the header is to be ignored (malformed, not
 * `bytes`, or several ranges: the whole representation is sent instead, as the RFC allows).
 * Positions may have any number of digits: a number too long to be exact is still far beyond any
 * `size` (a safe integer), so a first-byte-pos that long is unsatisfiable, a last-byte-pos that
 * long means "to the end", and a suffix that long means the whole representation.
 */
export function parseRange(header: string, size: number): ByteRange | 'unsatisfiable' | undefined {
  const m = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header);
  if (m === null) return undefined;
  const [, first = '', last = ''] = m;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  if (start >= size) return 'unsatisfiable';
  if (last === '') return { start, end: size - 1 };
  const end = Number(last);
  if (end < start) return undefined;
  return { start, end: Math.min(end, size - 1) };
}

/** Whether an `If-None-Match` header matches `etag` (weak comparison, as RFC 9110 requires). */
export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  const bare = (tag: string) => tag.trim().replace(/^W\//, '');
  return header.split(',').some((tag) => bare(tag) === bare(etag));
}
