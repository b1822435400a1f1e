import type { Flags, FlagValues } from './flags.js';

/** Exit codes, documented in the README. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130, terminated: 143 } as const;

/** Where a command's output goes: what `main` is given (the process's streams, or a test's). */
export interface Terminal {
  /** A result line on stdout (kept with `-q`). */
  out: (line: string) => void;
  /** A note on stderr: what happened, warnings (dropped with `-q`). */
  err: (line: string) => void;
  /** Whether stderr is a terminal. */
  isTty: boolean;
}

/** A command's output helpers, set by the global flags `-q`, `-v` and `--no-progress`. */
export interface Io extends Terminal {
  /** A line of `-v` detail on stderr (timings, each range), dropped without `-v`. */
  detail: (line: string) => void;
  verbose: boolean;
  /** Whether a progress display may be drawn: stderr a terminal, no `-q`, no `--no-progress`. */
  progress: boolean;
}

export interface Command<F extends Flags = Flags> {
  name: string;
  summary: string;
  /** Usage lines after `sluice NAME`, e.g. `IN OUT --key-file FILE`. */
  usage: string;
  /** Every option the command takes (none when absent); parseArgs and the help come from these. */
  flags?: F;
  /** Lines printed after the options in `--help`. */
  notes?: string[];
  /** Positional argument count: [min, max]. */
  positionals: [number, number];
  run(values: FlagValues<F>, positionals: string[], io: Io): Promise<number>;
  /** Words that may follow the command (its actions: `ls`, `verify`, …), offered by completion. */
  actions?: readonly string[];
}

/** A command, with its `run` typed by its flags (`values.cache` is `string | undefined`). */
export function defineCommand<F extends Flags>(command: Command<F>): Command<F> {
  return command;
}

/** A mistake in how the command was called: one line on stderr, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
