import { parseArgs } from 'node:util';
import { type Command, EXIT, type Terminal, UsageError } from './command.js';
import { batchCommand } from './commands/batch.js';
import { cacheCommand } from './commands/cache.js';
import { completionCommand } from './commands/completion.js';
import { concatCommand } from './commands/concat.js';
import { decryptCommand } from './commands/decrypt.js';
import { demoCommand } from './commands/demo.js';
import { doctorCommand } from './commands/doctor.js';
import { encryptCommand } from './commands/encrypt.js';
import { helpCommand } from './commands/help.js';
import { keysCommand } from './commands/keys.js';
import { loginCommand } from './commands/login.js';
import { logoutCommand } from './commands/logout.js';
import { lsCommand } from './commands/ls.js';
import { parcelCommand } from './commands/parcel.js';
import { passwdCommand } from './commands/passwd.js';
import { pullCommand } from './commands/pull.js';
import { pushCommand } from './commands/push.js';
import { releaseCommand } from './commands/release.js';
import { rmCommand } from './commands/rm.js';
import { serveCommand } from './commands/serve.js';
import { splitCommand } from './commands/split.js';
import { userCommand } from './commands/user.js';
import { versionCommand } from './commands/version.js';
import { globalFlags } from './commonFlags.js';
import { explainFailure } from './explainFailure.js';
import {
  applyDeprecatedAliases,
  currentFlags,
  type Flags,
  type FlagValues,
  parseArgsOptions,
} from './flags.js';
import { commandHelp, topHelp } from './help.js';
import { outputFor } from './output.js';
import { hint } from './suggest.js';
import { Interrupted } from './withInterrupt.js';

export const commands: Command[] = [
  loginCommand,
  logoutCommand,
  passwdCommand,
  pushCommand,
  pullCommand,
  releaseCommand,
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
  helpCommand(() => commands),
  versionCommand,
  completionCommand(() => commands),
];

const defaultIo: Terminal = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  isTty: Boolean(process.stderr.isTTY),
};

export async function main(argv: string[], terminal: Terminal = defaultIo): Promise<number> {
  const t0 = performance.now();
  let command: Command | undefined;
  try {
    const { leading, name, rest } = splitLeadingFlags(argv);
    command = leading.version === true ? versionCommand : findCommand(name);
    if (command === undefined) {
      terminal.out(topHelp(commands));
      return name === undefined && leading.help !== true ? EXIT.usage : EXIT.ok;
    }
    const flags = { ...command.flags, ...globalFlags };
    const { values, positionals } = parseArgs({
      args: leading.version === true ? [] : rest,
      options: parseArgsOptions(flags),
      allowPositionals: true,
      strict: true,
    });
    const global = { ...leading, ...definedOnly(values) } as FlagValues<typeof globalFlags>;
    const io = outputFor(terminal, global);
    if (global.help === true) {
      io.out(commandHelp(command));
      return EXIT.ok;
    }
    applyDeprecatedAliases(flags, values, io.err);
    const [min, max] = command.positionals;
    if (positionals.length < min || positionals.length > max) {
      throw new UsageError(
        `expected ${min === max ? min : `${min} to ${max}`} argument(s), got ${positionals.length}`,
      );
    }
    const code = await command.run(values as FlagValues<Flags>, positionals, io);
    io.detail(
      `sluice ${command.name}: exit ${code} after ${Math.round(performance.now() - t0)} ms`,
    );
    return code;
  } catch (err) {
    const prefix = command === undefined ? 'sluice' : `sluice ${command.name}`;
    if (err instanceof Interrupted) {
      terminal.err(`${prefix}: ${err.message}`);
      return err.exitCode;
    }
    const usage = usageMessage(err, command);
    if (usage !== undefined) {
      terminal.err(`${prefix}: ${usage}`);
      return EXIT.usage;
    }
    terminal.err(`sluice: ${describeFailure(explainFailure(err))}`);
    return EXIT.failed;
  }
}

/** The command called `name`; an unknown one is a usage error naming the closest. */
function findCommand(name: string | undefined): Command | undefined {
  if (name === undefined) return undefined;
  const command = commands.find((c) => c.name === name);
  if (command !== undefined) return command;
  const names = commands.map((c) => c.name);
  throw new UsageError(`unknown command '${name}'${hint(name, names, 'sluice --help')}`);
}

/** Global flags before the command's name (`sluice -q pull …`), `--version` and `--help` among them. */
function splitLeadingFlags(argv: string[]): {
  leading: Record<string, boolean>;
  name: string | undefined;
  rest: string[];
} {
  const byName = new Map<string, string>([['--version', 'version']]);
  for (const [long, flag] of Object.entries(globalFlags)) {
    byName.set(`--${long}`, long);
    if ('short' in flag) byName.set(`-${flag.short}`, long);
  }
  const leading: Record<string, boolean> = {};
  let i = 0;
  for (; i < argv.length && (argv[i] ?? '').startsWith('-'); i++) {
    const arg = argv[i] ?? '';
    const long = byName.get(arg);
    if (long === undefined) {
      const known = [...byName.keys()].filter((k) => k.startsWith('--'));
      throw new UsageError(`unknown option '${arg}'${hint(arg, known, 'sluice --help')}`);
    }
    leading[long] = true;
  }
  return { leading, name: argv[i], rest: argv.slice(i + 1) };
}

function definedOnly(values: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined));
}

/** The one line of a usage error (exit 2), or undefined when `err` is not one. */
function usageMessage(err: unknown, command: Command | undefined): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  const isParse = typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
  if (!(err instanceof UsageError) && !isParse) return undefined;
  const help = command === undefined ? 'sluice --help' : `sluice ${command.name} --help`;
  // parseArgs explains on further lines; a usage error is one line.
  const message = (err as Error).message.split('\n')[0] ?? '';
  const unknown = /^Unknown option '([^']+)'/.exec(message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown !== undefined && command) {
    const names = Object.keys(currentFlags({ ...command.flags, ...globalFlags }));
    return `unknown option '${unknown}'${hint(
      unknown,
      names.map((n) => `--${n}`),
      help,
    )}`;
  }
  return /did you mean|\(see '/.test(message) ? message : `${message} (see '${help}')`;
}

/** One line: the message, then the code when the error has one (SluiceError, ApiError, errno). */
function describeFailure(err: unknown): string {
  if (typeof err !== 'object' || err === null) return String(err);
  const { message, code } = err as { message?: unknown; code?: unknown };
  const text = typeof message === 'string' && message !== '' ? message : String(err);
  const firstLine = text.split('\n')[0] ?? text;
  return typeof code === 'string' ? `${firstLine} (${code})` : firstLine;
}
