import type { ParseArgsConfig } from 'node:util';
import { UsageError } from './command.js';

/**
 * One command-line option, declared once (as rclone declares each option with its help): the
 * `node:util` parseArgs config and the `--help` line are both generated from it.
 */
export type Flag =
  | { type: 'boolean'; short?: string; help: string; replacedBy?: string }
  | {
      type: 'string';
      short?: string;
      /** An old name kept working: its value goes to this flag, with a warning (see `deprecatedAlias`). */
      replacedBy?: string;
      /** What the value is called in the help: `--cache DIR`. */
      value: string;
      help: string;
      /** Taken when the flag is absent; the help says `(default …)`. */
      default?: string;
      /** May be given more than once: the command gets every value, in order. */
      multiple?: true;
    };

/** A command's options by long name (`'password-stdin'`). */
export type Flags = Record<string, Flag>;

/** What a command gets for its flags: a string flag with a default is always there. */
export type FlagValues<F extends Flags> = { [K in keyof F]: FlagValue<F[K]> };

type FlagValue<F extends Flag> = F extends { type: 'boolean' }
  ? boolean | undefined
  : F extends { multiple: true }
    ? string[] | undefined
    : F extends { default: string }
      ? string
      : string | undefined;

type ParseArgsOptions = NonNullable<ParseArgsConfig['options']>;

/** The parseArgs `options` of these flags. */
export function parseArgsOptions(flags: Flags): ParseArgsOptions {
  const options: ParseArgsOptions = {};
  for (const [name, flag] of Object.entries(flags)) {
    // parseArgs checks `short` and `default` whenever the key exists, even holding undefined.
    const option: ParseArgsOptions[string] = { type: flag.type };
    if (flag.short !== undefined) option.short = flag.short;
    if (flag.type === 'string' && flag.default !== undefined) option.default = flag.default;
    if (flag.type === 'string' && flag.multiple === true) option.multiple = true;
    options[name] = option;
  }
  return options;
}

/** `--dir` as an old name of `--cache`: it still works, says it is deprecated, is not in the help. */
export function deprecatedAlias<F extends Flag>(flag: F, replacedBy: string): F {
  const { short: _short, ...rest } = flag;
  return { ...rest, replacedBy } as F;
}

/**
 * Moves the values of deprecated names onto the flags that replaced them, warning once for each
 * one used; giving both names is a usage error.
 */
export function applyDeprecatedAliases(
  flags: Flags,
  values: Record<string, unknown>,
  warn: (line: string) => void,
): void {
  for (const [old, flag] of Object.entries(flags)) {
    const target = flag.replacedBy;
    if (target === undefined || values[old] === undefined) continue;
    if (values[target] !== undefined) {
      throw new UsageError(`give --${target} (or its old name --${old}), not both`);
    }
    values[target] = values[old];
    delete values[old];
    warn(`warning: --${old} is deprecated; use --${target}`);
  }
}

/** The flags a user is shown (help, completion): deprecated names left out. */
export function currentFlags(flags: Flags): Flags {
  return Object.fromEntries(Object.entries(flags).filter(([, f]) => f.replacedBy === undefined));
}

/** Help lines are wrapped to this many columns. */
const HELP_WIDTH = 100;

/** One `  -o, --output PATH  text` entry per flag, the texts in one column, wrapped. */
export function flagHelp(flags: Flags): string[] {
  const entries = Object.entries(currentFlags(flags));
  const anyShort = entries.some(([, f]) => f.short !== undefined);
  const heads = entries.map(([name, f]) => {
    const short = f.short !== undefined ? `-${f.short}, ` : anyShort ? '    ' : '';
    const value = f.type === 'string' ? ` ${f.value}${f.multiple === true ? '…' : ''}` : '';
    return `${short}--${name}${value}`;
  });
  const column = Math.max(...heads.map((h) => h.length)) + 2;
  return entries.flatMap(([, flag], i) => {
    const text =
      flag.type === 'string' && flag.default !== undefined
        ? `${flag.help} (default ${flag.default})`
        : flag.help;
    const [first = '', ...rest] = wrap(text, HELP_WIDTH - 2 - column);
    return [
      `  ${(heads[i] ?? '').padEnd(column)}${first}`,
      ...rest.map((line) => `  ${' '.repeat(column)}${line}`),
    ];
  });
}

/** Words into lines of at most `width` characters (a longer word gets a line of its own). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  lines.push(line);
  return lines;
}
