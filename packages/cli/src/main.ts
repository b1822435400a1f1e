import { parseArgs } from 'node:util';
import { isSluiceError } from '@sluice/core';
import { type Command, EXIT, type Io, UsageError } from './command.js';
import { concatCommand } from './commands/concat.js';
import { decryptCommand } from './commands/decrypt.js';
import { demoCommand } from './commands/demo.js';
import { doctorCommand } from './commands/doctor.js';
import { encryptCommand } from './commands/encrypt.js';
import { splitCommand } from './commands/split.js';

export const commands: Command[] = [
  demoCommand,
  encryptCommand,
  decryptCommand,
  splitCommand,
  concatCommand,
  doctorCommand,
];

const defaultIo: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  isTty: Boolean(process.stderr.isTTY),
};

function topHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: sluice COMMAND [options]',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "Run `sluice COMMAND --help` for a command's options.",
    'Exit codes: 0 success, 1 the operation failed, 2 usage error.',
  ].join('\n');
}

function commandHelp(c: Command): string {
  return [
    `usage: sluice ${c.name} ${c.usage}`.trimEnd(),
    '',
    c.summary,
    '',
    ...c.help,
    '  --help  show this help',
  ].join('\n');
}

export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(topHelp());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    io.err(`sluice: unknown command '${name}'\n\n${topHelp()}`);
    return EXIT.usage;
  }
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      io.out(commandHelp(command));
      return EXIT.ok;
    }
    const [min, max] = command.positionals;
    if (positionals.length < min || positionals.length > max) {
      throw new UsageError(
        `expected ${min === max ? min : `${min} to ${max}`} argument(s), got ${positionals.length}`,
      );
    }
    return await command.run(values, positionals, io);
  } catch (err) {
    if (
      err instanceof UsageError ||
      (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      io.err(`sluice ${command.name}: ${(err as Error).message}\n\n${commandHelp(command)}`);
      return EXIT.usage;
    }
    if (isSluiceError(err)) {
      io.err(`sluice ${command.name}: ${err.code}: ${err.message}`);
      return EXIT.failed;
    }
    io.err(`sluice ${command.name}: ${(err as Error)?.message ?? String(err)}`);
    return EXIT.failed;
  }
}
