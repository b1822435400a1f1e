import { describe, expect, it } from 'vitest';
import { closest, editDistance } from './suggest.js';

describe('closest', () => {
  const commands = ['login', 'logout', 'push', 'pull', 'ls', 'rm', 'cache', 'completion'];

  it('names the command or flag a typo most likely meant', () => {
    expect(closest('pul', commands)).toBe('pull');
    expect(closest('psuh', commands)).toBe('push'); // a swap of neighbours is one edit
    expect(closest('logni', commands)).toBe('login');
    expect(closest('--outptu', ['--output', '--json'])).toBe('--output');
    expect(closest('compl', commands)).toBe('completion'); // the only one it begins
  });

  it('names nothing when nothing is close, or when the prefix is shared', () => {
    expect(closest('frobnicate', commands)).toBeUndefined();
    expect(closest('pu', ['push', 'pull'])).toBeUndefined();
    expect(closest('--frob', ['--json', '--output'])).toBeUndefined();
    expect(closest('xyz', commands)).toBeUndefined();
  });

  it('counts edits as optimal string alignment does', () => {
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('ab', 'ba')).toBe(1);
    expect(editDistance('same', 'same')).toBe(0);
  });
});
