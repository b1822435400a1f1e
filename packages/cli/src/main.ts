import { parseArgs } from 'node:util';
import { type Command, EXIT, type Io, UsageError } from './command.js';
import { batchCommand } from './commands/batch.js';
import { cacheCommand } from './commands/cache.js';
import { concatCommand } from './commands/concat.js';
import { decryptCommand } from './commands/decrypt.js';
import { demoCommand } from './commands/demo.js';
import { doctorCommand } from './commands/doctor.js';
import { encryptCommand } from './commands/encrypt.js';
import { keysCommand } from './commands/keys.js';
import { loginCommand } from './commands/login.js';
import { logoutCommand } from './commands/logout.js';
import { lsCommand } from './commands/ls.js';
import { parcelCommand } from './commands/parcel.js';
import { passwdCommand } from './commands/passwd.js';
import { pullCommand } from './commands/pull.js';
import { pushCommand } from './commands/push.js';
import { rmCommand } from './commands/rm.js';
import { serveCommand } from './commands/serve.js';
import { splitCommand } from './commands/split.js';
import { userCommand } from './commands/user.js';
import { commonFlags } from './commonFlags.js';
import { explainFailure } from './explainFailure.js';
import { type Flags, type FlagValues, parseArgsOptions } from './flags.js';
import { commandHelp, topHelp } from './help.js';

export const commands: Command[] = [
  loginCommand,
  logoutCommand,
  passwdCommand,
  pushCommand,
  pullCommand,
  batchCommand,
  cacheCommand,
  lsCommand,
  rmCommand,
  userCommand,
  keysCommand,
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

export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(topHelp(commands));
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    io.err(`sluice: unknown command '${name}'\n\n${topHelp(commands)}`);
    return EXIT.usage;
  }
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      options: parseArgsOptions({ ...command.flags, help: commonFlags.help }),
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
    return await command.run(values as FlagValues<Flags>, positionals, io);
  } catch (err) {
    if (
      err instanceof UsageError ||
      (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      io.err(`sluice ${command.name}: ${(err as Error).message}\n\n${commandHelp(command)}`);
      return EXIT.usage;
    }
    io.err(`sluice: ${describeFailure(explainFailure(err))}`);
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
