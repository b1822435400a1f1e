import type { Io, Terminal } from './command.js';

/** The global flags as a command's output helpers see them. */
export interface OutputFlags {
  quiet?: boolean | undefined;
  verbose?: boolean | undefined;
  'no-progress'?: boolean | undefined;
}

/**
 * A command's `Io` over the terminal: `-q` drops every note on stderr (errors are printed by
 * `main`, not through this), `-v` lets detail lines through, a progress display needs a terminal
 * and neither `-q` nor `--no-progress`.
 */
export function outputFor(terminal: Terminal, flags: OutputFlags): Io {
  const quiet = flags.quiet === true;
  const verbose = flags.verbose === true && !quiet;
  const drop = () => {};
  return {
    out: terminal.out,
    err: quiet ? drop : terminal.err,
    isTty: terminal.isTty,
    detail: verbose ? terminal.err : drop,
    verbose,
    progress: terminal.isTty && !quiet && flags['no-progress'] !== true,
  };
}
