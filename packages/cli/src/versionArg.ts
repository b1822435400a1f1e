import { UsageError } from './command.js';

/** A version number as typed (`--version 3`, `release … 3`, `v3` too), or a usage error. */
export function parseVersionArg(text: string, what = '--version'): number {
  const m = /^v?([1-9][0-9]{0,8})$/.exec(text);
  if (m?.[1] === undefined) {
    throw new UsageError(`${what} must be a version number (1, 2, …), got '${text.slice(0, 32)}'`);
  }
  return Number(m[1]);
}

/** `--version N` when given. */
export function optionalVersion(text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseVersionArg(text);
}
