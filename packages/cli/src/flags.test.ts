import { parseArgs } from 'node:util';
import { describe, expect, it } from 'vitest';
import { flagHelp, parseArgsOptions } from './flags.js';

const flags = {
  output: { type: 'string', short: 'o', value: 'PATH', help: 'where it goes' },
  size: { type: 'string', value: 'SIZE', help: 'how big', default: '512MiB' },
  json: { type: 'boolean', help: 'print one JSON line' },
} as const;

describe('flag declarations', () => {
  it('a flag declared multiple collects every value, and its help says so', () => {
    const many = {
      trust: { type: 'string', value: 'FILE', help: 'keys', multiple: true },
    } as const;
    expect(parseArgsOptions(many)).toEqual({ trust: { type: 'string', multiple: true } });
    const { values } = parseArgs({
      args: ['--trust', 'a', '--trust', 'b'],
      options: parseArgsOptions(many),
    });
    expect(values).toEqual({ trust: ['a', 'b'] });
    expect(flagHelp(many)).toEqual(['  --trust FILE…  keys']);
  });

  it('give parseArgs its options: short alias and default only where declared', () => {
    expect(parseArgsOptions(flags)).toEqual({
      output: { type: 'string', short: 'o' },
      size: { type: 'string', default: '512MiB' },
      json: { type: 'boolean' },
    });
    const { values } = parseArgs({ args: ['-o', 'x'], options: parseArgsOptions(flags) });
    expect(values).toEqual({ output: 'x', size: '512MiB' });
  });

  it('give the help: one column of texts, the default said, long texts wrapped under it', () => {
    expect(flagHelp(flags)).toEqual([
      '  -o, --output PATH  where it goes',
      '      --size SIZE    how big (default 512MiB)',
      '      --json         print one JSON line',
    ]);
    const long = flagHelp({ x: { type: 'boolean', help: 'word '.repeat(40).trim() } });
    expect(long.length).toBeGreaterThan(1);
    for (const line of long) expect(line.length).toBeLessThanOrEqual(100);
    expect(long.slice(1).every((l) => l.startsWith(' '.repeat(7)))).toBe(true);
  });
});
