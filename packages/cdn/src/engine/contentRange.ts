export interface ContentRange {
  first: number;
  last: number;
  /** The object's size, or `*` when the server does not say. */
  total: number | '*';
}

/** `Content-Range: bytes <first>-<last>/<total>` split up; null when absent or of another form. */
export function parseContentRange(header: string | null | undefined): ContentRange | null {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header ?? '');
  if (match === null) return null;
  const [, first, last, total] = match as unknown as [string, string, string, string];
  return { first: Number(first), last: Number(last), total: total === '*' ? '*' : Number(total) };
}
