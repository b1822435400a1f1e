import { UsageError } from './command.js';

/**
 * Checks `sluice COMMAND ACTION ARGS...` against the argument count of each action (`user`,
 * `parcel`): an unknown action or a wrong count is a usage error.
 */
export function checkAction(
  command: string,
  arities: Readonly<Record<string, number>>,
  action: string,
  args: readonly string[],
): void {
  const arity = arities[action];
  if (arity === undefined) throw new UsageError(`unknown action '${action}'`);
  if (args.length !== arity) {
    throw new UsageError(`${command} ${action} takes ${arity} argument(s), got ${args.length}`);
  }
}
