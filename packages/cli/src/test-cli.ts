// Runs the built `sluice` binary in a child process, asynchronously, so a server in the same test
// process (or in another child) keeps answering while the CLI talks to it.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const bin = fileURLToPath(new URL('../bin/sluice.js', import.meta.url));

/** Variables a developer's shell may hold that would change what the CLI does under test. */
const SCRUBBED = [
  'SLUICE_PASSWORD',
  'SLUICE_NEW_PASSWORD',
  'SLUICE_ADMIN_PASSWORD',
  'SLUICE_HARDWARE_HASH',
  'SLUICE_HARDWARE_FACTORS',
  'SLUICE_BINDING_MAX_DRIFT',
  'SLUICE_BINDING_MIN_MATCH',
  'SLUICE_BINDING_DRIFT_COOLDOWN',
  'SLUICE_CONFIG_DIR',
  'SLUICE_SERVER',
  'SLUICE_EMAIL',
  'SLUICE_DATA_DIR',
  'XDG_CONFIG_HOME',
  'XDG_CACHE_HOME',
  'SLUICE_CACHE_MAX',
  'SLUICE_PARCEL_KEY',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'ALL_PROXY',
  'NO_PROXY',
  'http_proxy',
  'https_proxy',
  'all_proxy',
  'no_proxy',
];

/** The scrypt cost of password hashes in the tests' servers: 2^12 (the server's default is 2^15). */
export const TEST_PASSWORD_HASH = { logN: 12 };

/**
 * Writes a `sluice serve --config` file in `dir` holding only `passwordHash` (a cheaper password
 * hash, so suites with many logins stay fast) and returns its path.
 */
export function fastHashConfig(dir: string): string {
  const path = join(dir, 'fast-hash.json');
  writeFileSync(path, JSON.stringify({ passwordHash: TEST_PASSWORD_HASH }));
  return path;
}

export function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of SCRUBBED) delete env[name];
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  /** Written to stdin, which is then closed (stdin is always closed: never a TTY). */
  input?: string;
}

export function start(args: string[], options: RunOptions = {}): ChildProcess {
  const child = spawn(process.execPath, [bin, ...args], {
    env: cliEnv(options.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin?.end(options.input ?? '');
  return child;
}

export function finished(child: ChildProcess): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

export function run(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return finished(start(args, options));
}

/** Resolves with the URL from `sluice serve`'s `listening on URL` line on stderr. */
export function listeningUrl(child: ChildProcess, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`serve printed no URL within ${timeoutMs} ms; stderr: ${seen}`));
    }, timeoutMs);
    const onData = (d: Buffer | string) => {
      seen += String(d);
      const m = /listening on (https?:\/\/\S+)/.exec(seen);
      if (m?.[1]) {
        cleanup();
        resolve(m[1]);
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`serve exited (${code}) before listening; stderr: ${seen}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
    };
    child.stderr?.on('data', onData);
    child.on('exit', onExit);
  });
}

/**
 * Whether to skip the terminal tests: util-linux `script` gives the CLI a pseudo-terminal; where
 * it is missing they skip, except in CI, where its absence must fail them.
 */
export const skipTty =
  process.env.CI !== 'true' &&
  (() => {
    try {
      return !execFileSync('script', ['--version'], { encoding: 'utf8' }).includes('util-linux');
    } catch {
      return true;
    }
  })();

/**
 * Runs the CLI on a pseudo-terminal (util-linux `script`): stdin, stdout and stderr are a TTY.
 * `answers` are typed, in order, each once its prompt has appeared in the output.
 */
export function runOnTty(
  args: string[],
  options: {
    env?: Record<string, string | undefined>;
    answers?: [RegExp, string][];
    /** The terminal's width (`stty cols`), else whatever `script` gives its pseudo-terminal. */
    columns?: number;
  } = {},
): Promise<RunResult> {
  const quoted = [process.execPath, bin, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`);
  const size = options.columns === undefined ? '' : `stty cols ${options.columns} rows 24 && `;
  const child = spawn('script', ['-qefc', `${size}${quoted.join(' ')}`, '/dev/null'], {
    env: cliEnv(options.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const pending = [...(options.answers ?? [])];
  let typed = 0;
  let seen = '';
  child.stdout?.on('data', (d: Buffer | string) => {
    seen += String(d);
    const next = pending[0];
    if (next?.[0].test(seen.slice(typed))) {
      pending.shift();
      typed = seen.length;
      child.stdin?.write(`${next[1]}\r`);
    }
  });
  return finished(child);
}
