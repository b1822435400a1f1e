import { type Command, defineCommand, EXIT, UsageError } from '../command.js';
import { bashCompletion, zshCompletion } from '../completionScripts.js';

const SHELLS = { bash: bashCompletion, zsh: zshCompletion } as const;

/** `sluice completion bash|zsh`: a completion script made from the declared commands and flags. */
export function completionCommand(commands: () => readonly Command[]): Command {
  return defineCommand({
    name: 'completion',
    summary: 'Print a bash or zsh completion script',
    usage: 'bash|zsh',
    actions: Object.keys(SHELLS),
    notes: [
      'bash: source <(sluice completion bash)   (or save it in ~/.local/share/bash-completion/completions/sluice)',
      'zsh:  source <(sluice completion zsh)    (or save it as _sluice in a directory of $fpath)',
    ],
    positionals: [1, 1],
    async run(_values, [shell = ''], io) {
      if (!Object.hasOwn(SHELLS, shell))
        throw new UsageError(`no completion for '${shell}' (bash or zsh)`);
      io.out(SHELLS[shell as keyof typeof SHELLS](commands()).trimEnd());
      return EXIT.ok;
    },
  });
}
