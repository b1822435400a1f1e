import type { ParseArgsConfig } from 'node:util';

/** Exit codes, documented in the README. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  isTty: boolean;
}

export interface Command {
  name: string;
  summary: string;
  /** Usage lines after `sluice NAME`, e.g. `IN OUT --key-file FILE`. */
  usage: string;
  /** Option help, one `--flag  text` line each. */
  help: string[];
  options: Options;
  /** Positional argument count: [min, max]. */
  positionals: [number, number];
  run(values: Values, positionals: string[], io: Io): Promise<number>;
}

/** A mistake in how the command was called: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
