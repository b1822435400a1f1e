import { UsageError } from './command.js';

export interface PasswordSource {
  /** Environment variable checked first. */
  env: string;
  /** Read the first line of stdin (`--password-stdin`). */
  stdin: boolean | undefined;
  /** Prompt shown on a terminal. */
  prompt: string;
  /** Ask twice on a terminal and insist the answers match (new passwords). */
  confirm?: boolean;
}

/**
 * A password from stdin (when asked), the environment, or a no-echo prompt on the terminal; never from a
 * command-line flag, which other users could read in the process list.
 */
export async function readPassword(source: PasswordSource): Promise<string> {
  // The flag asked for on this very command line wins over the environment.
  if (source.stdin) {
    const line = await readStdinLine();
    if (line === '') throw new UsageError('--password-stdin: stdin held no password');
    return line;
  }
  const fromEnv = process.env[source.env];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (!process.stdin.isTTY) {
    throw new UsageError(
      `no password: set ${source.env}, pass --password-stdin, or run on a terminal to be asked`,
    );
  }
  const first = await promptHidden(source.prompt);
  if (source.confirm) {
    const again = await promptHidden('again: ');
    if (again !== first) throw new UsageError('the two passwords differ');
  }
  if (first === '') throw new UsageError('empty password');
  return first;
}

/**
 * The user's own password: `--password-stdin`, else `$SLUICE_PASSWORD`, else a prompt, which
 * names the account (`password for ops@example.com: `).
 */
export function readUserPassword(stdin: boolean | undefined, prompt: string): Promise<string> {
  return readPassword({ env: 'SLUICE_PASSWORD', stdin, prompt });
}

/**
 * The current and the new password of a change: with `stdin`, the first and second line of stdin;
 * else `$SLUICE_PASSWORD` and `$SLUICE_NEW_PASSWORD`, each else a prompt (the new one twice).
 */
export async function readPasswordChange(
  stdin: boolean | undefined,
  email: string,
): Promise<{ current: string; next: string }> {
  if (stdin) {
    const [current = '', next = ''] = await readStdinLines();
    if (current === '' || next === '') {
      throw new UsageError(
        '--password-stdin: give the current password on the first line and the new one on the second',
      );
    }
    return { current, next };
  }
  const current = await readUserPassword(false, `current password for ${email}: `);
  const next = await readPassword({
    env: 'SLUICE_NEW_PASSWORD',
    stdin: false,
    prompt: `new password for ${email}: `,
    confirm: true,
  });
  return { current, next };
}

/** A line typed on the terminal (echoed), for non-secret questions such as an email. */
export async function promptLine(prompt: string): Promise<string> {
  if (!process.stdin.isTTY) throw new UsageError(`${prompt.replace(/:\s*$/, '')} is required`);
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(prompt)).trim();
  } finally {
    rl.close();
  }
}

async function readStdinLine(): Promise<string> {
  return (await readStdinLines())[0] ?? '';
}

async function readStdinLines(): Promise<string[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/);
}

function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  // Echo goes off before the prompt shows: whatever is typed after seeing it is never echoed.
  stdin.setRawMode(true);
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let value = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (data: Buffer) => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return done();
        if (ch === '\u0003') return done(new Error('cancelled'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.resume();
    stdin.on('data', onData);
  });
}
