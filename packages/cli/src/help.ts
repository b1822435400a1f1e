import type { Command } from './command.js';
import { commonFlags, globalFlags } from './commonFlags.js';
import { flagHelp } from './flags.js';

/** `sluice --help`: every command with its summary, the global options, the exit codes. */
export function topHelp(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: sluice [-q | -v] [--no-progress] COMMAND [options]',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'global options (before or after COMMAND):',
    ...flagHelp({ ...globalFlags, version: { type: 'boolean', help: 'print the version' } }),
    '',
    "Run `sluice help COMMAND` (or `sluice COMMAND --help`) for a command's options.",
    'Exit codes: 0 success, 1 the operation failed, 2 usage error, 130 interrupted (SIGINT),',
    '143 terminated (SIGTERM).',
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
  const global = 'Global options: -q/--quiet, -v/--verbose, --no-progress (`sluice --help`).';
  return [...forms, '', c.summary, '', ...options, ...notes, '', global].join('\n');
}
