import { type Command, defineCommand, EXIT, UsageError } from '../command.js';
import { commandHelp, topHelp } from '../help.js';
import { hint } from '../suggest.js';

/** `sluice help [COMMAND]`: the top-level help, or one command's. */
export function helpCommand(commands: () => readonly Command[]): Command {
  return defineCommand({
    name: 'help',
    summary: 'Show the help of a command, or of sluice',
    usage: '[COMMAND]',
    positionals: [0, 1],
    async run(_values, [name], io) {
      const all = commands();
      if (name === undefined) {
        io.out(topHelp(all));
        return EXIT.ok;
      }
      const command = all.find((c) => c.name === name);
      if (command === undefined) {
        const names = all.map((c) => c.name);
        throw new UsageError(`unknown command '${name}'${hint(name, names, 'sluice --help')}`);
      }
      io.out(commandHelp(command));
      return EXIT.ok;
    },
  });
}
