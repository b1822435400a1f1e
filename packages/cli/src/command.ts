import type { Flags, FlagValues } from './flags.js';

/** Exit codes, documented in the README. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  isTty: boolean;
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
}

/** A command, with its `run` typed by its flags (`values.cache` is `string | undefined`). */
export function defineCommand<F extends Flags>(command: Command<F>): Command<F> {
  return command;
}

/** A mistake in how the command was called: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
