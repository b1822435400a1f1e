import { describe, expect, it } from 'vitest';
import { UsageError } from './command.js';
import { parseSize } from './units.js';

describe('parseSize', () => {
  it('reads decimals and SI or IEC units', () => {
    const cases: [string, number][] = [
      ['1000', 1000],
      ['1GB', 1e9],
      ['1.5GiB', 1.5 * 2 ** 30],
      ['500M', 500 * 2 ** 20],
      ['500MB', 500e6],
      ['10k', 10 * 1024],
      ['10kB', 10e3],
      ['0.5 KiB', 512],
      ['2TiB', 2 * 2 ** 40],
      ['3tb', 3e12],
      ['.5G', 2 ** 29],
      ['1.0000001B', 1],
    ];
    for (const [text, bytes] of cases) expect(parseSize(text), text).toBe(bytes);
  });

  it('refuses nonsense with a UsageError that says what a size looks like', () => {
    for (const bad of [
      '1.2.3GB',
      '-1',
      'GB',
      '',
      '1e9',
      '1,5G',
      '12 parsecs',
      '1GBB',
      'Infinity',
      '9'.repeat(20),
    ]) {
      expect(() => parseSize(bad), bad).toThrow(UsageError);
      expect(() => parseSize(bad), bad).toThrow(/^bad size '.*': a number and an optional unit/);
    }
  });
});
