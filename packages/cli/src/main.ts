import { parseArgs } from 'node:util';
import { type Command, EXIT, type Io, UsageError } from './command.js';
import { batchCommand } from './commands/batch.js';
import { cacheCommand } from './commands/cache.js';
import { concatCommand } from './commands/concat.js';
import { decryptCommand } from './commands/decrypt.js';
import { demoCommand } from './commands/demo.js';
import { doctorCommand } from './commands/doctor.js';
import { encryptCommand } from './commands/encrypt.js';
import { loginCommand } from './commands/login.js';
import { logoutCommand } from './commands/logout.js';
import { lsCommand } from './commands/ls.js';
import { parcelCommand } from './commands/parcel.js';
import { pullCommand } from './commands/pull.js';
import { pushCommand } from './commands/push.js';
import { rmCommand } from './commands/rm.js';
import { serveCommand } from './commands/serve.js';
import { splitCommand } from './commands/split.js';
import { userCommand } from './commands/user.js';

export const commands: Command[] = [
  loginCommand,
  logoutCommand,
  pushCommand,
  pullCommand,
  batchCommand,
  cacheCommand,
  lsCommand,
  rmCommand,
  userCommand,
  parcelCommand,
  serveCommand,
  doctorCommand,
  demoCommand,
  encryptCommand,
  decryptCommand,
  splitCommand,
  concatCommand,
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
  // `usage` may hold one form per line; `help` is option lines, then after a blank line, notes.
  const forms = c.usage
    .split('\n')
    .map((u, i) => `${i === 0 ? 'usage:' : '      '} sluice ${c.name} ${u}`.trimEnd());
  const blank = c.help.indexOf('');
  const options = blank < 0 ? c.help : c.help.slice(0, blank);
  const notes = blank < 0 ? [] : c.help.slice(blank);
  return [...forms, '', c.summary, '', ...options, '  --help  show this help', ...notes].join('\n');
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
    io.err(`sluice: ${describeFailure(err)}`);
    return EXIT.failed;
  }
}

/** One line: the message, then the code when the error has one (SluiceError, ApiError, errno). */
function describeFailure(err: unknown): string {
  if (typeof err !== 'object' || err === null) return String(err);
  const { message, code } = err as { message?: unknown; code?: unknown };
  const text = typeof message === 'string' && message !== '' ? message : String(err);
  const firstLine = text.split('\n')[0] ?? text;
  return typeof code === 'string' ? `${firstLine} (${code})` : firstLine;
}
