import { describe, expect, it } from 'vitest';
import { ifNoneMatchHits, parseRange } from './byteRange.js';

describe('parseRange', () => {
  it('parses the three single-range forms and clamps the end', () => {
    expect(parseRange('bytes=0-99', 1000)).toEqual({ start: 0, end: 99 });
    expect(parseRange('bytes=500-', 1000)).toEqual({ start: 500, end: 999 });
    expect(parseRange('bytes=-100', 1000)).toEqual({ start: 900, end: 999 });
    expect(parseRange('bytes=-5000', 1000)).toEqual({ start: 0, end: 999 });
    expect(parseRange('bytes=990-2000', 1000)).toEqual({ start: 990, end: 999 });
    expect(parseRange('bytes=999-999', 1000)).toEqual({ start: 999, end: 999 });
  });

  it('reports unsatisfiable ranges', () => {
    expect(parseRange('bytes=1000-', 1000)).toBe('unsatisfiable');
    expect(parseRange('bytes=1000-1001', 1000)).toBe('unsatisfiable');
    expect(parseRange('bytes=-0', 1000)).toBe('unsatisfiable');
    expect(parseRange('bytes=99999999999999999-', 1000)).toBe('unsatisfiable');
  });

  it('reads positions of any length (RFC 9110): long ends clamp, long starts are unsatisfiable', () => {
    const huge = '9'.repeat(400);
    expect(parseRange(`bytes=5-${huge}`, 1000)).toEqual({ start: 5, end: 999 });
    expect(parseRange(`bytes=0-${'7'.padStart(30, '0')}`, 1000)).toEqual({ start: 0, end: 7 });
    expect(parseRange(`bytes=${'5'.padStart(30, '0')}-`, 1000)).toEqual({ start: 5, end: 999 });
    expect(parseRange(`bytes=-${huge}`, 1000)).toEqual({ start: 0, end: 999 });
    expect(parseRange(`bytes=${huge}-`, 1000)).toBe('unsatisfiable');
    expect(parseRange(`bytes=${huge}-${huge}`, 1000)).toBe('unsatisfiable');
    expect(parseRange(`bytes=-${'0'.repeat(20)}`, 1000)).toBe('unsatisfiable');
  });

  it('ignores what it does not serve: other units, several ranges, malformed, reversed', () => {
    for (const h of ['items=0-1', 'bytes=0-1,5-6', 'bytes=a-b', 'bytes=-', 'bytes=5-1', '']) {
      expect(parseRange(h, 1000), h).toBeUndefined();
    }
  });
});

describe('ifNoneMatchHits', () => {
  it('matches a listed tag (weakly), or *', () => {
    expect(ifNoneMatchHits('"abc"', '"abc"')).toBe(true);
    expect(ifNoneMatchHits('"x", W/"abc"', '"abc"')).toBe(true);
    expect(ifNoneMatchHits('*', '"abc"')).toBe(true);
    expect(ifNoneMatchHits('"abd"', '"abc"')).toBe(false);
    expect(ifNoneMatchHits(undefined, '"abc"')).toBe(false);
  });
});
