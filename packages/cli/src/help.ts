import type { Command } from './command.js';
import { commonFlags } from './commonFlags.js';
import { flagHelp } from './flags.js';

/** `sluice --help`: every command with its summary. */
export function topHelp(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: sluice COMMAND [options]',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "Run `sluice COMMAND --help` for a command's options.",
    'Exit codes: 0 success, 1 the operation failed, 2 usage error.',
  ].join('\n');
}

/** `sluice NAME --help`: its usage forms, summary, options (from their declarations) and notes. */
export function commandHelp(c: Command): string {
  // `usage` may hold one form per line.
  const forms = c.usage
    .split('\n')
    .map((u, i) => `${i === 0 ? 'usage:' : '      '} sluice ${c.name} ${u}`.trimEnd());
  const notes = c.notes === undefined ? [] : ['', ...c.notes];
  const options = flagHelp({ ...c.flags, help: commonFlags.help });
  return [...forms, '', c.summary, '', ...options, ...notes].join('\n');
}
