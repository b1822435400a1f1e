// The built `sluice` binary in a child process, for faults that need a real process to kill:
// the puller or the server SIGKILLed half-way, two pullers racing for one cache, a skewed clock.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TEST_SCRYPT } from '../apiServer.js';

export const SLUICE_BIN = fileURLToPath(
  new URL('../../../../packages/cli/bin/sluice.js', import.meta.url),
);
/** Preload that shifts this process's clock by $SLUICE_TEST_CLOCK_SKEW_MS. */
export const SKEW_CLOCK = fileURLToPath(new URL('./skewClock.mjs', import.meta.url));

export interface CliRun {
  child: ChildProcess;
  /** Resolves when the process has exited, with its code or signal and its output. */
  done: Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
  }>;
  /** Output so far. */
  stderr(): string;
}

/**
 * Writes a `sluice serve --config` file in `dir` holding only `passwordHash` (the cheaper hash
 * cost of the other e2e servers, so logins stay fast) and returns its path.
 */
export async function fastHashConfig(dir: string): Promise<string> {
  const path = join(dir, 'fast-hash.json');
  await writeFile(path, JSON.stringify({ passwordHash: { logN: TEST_SCRYPT.logN } }));
  return path;
}

/** Starts `sluice ...args` with `env` on top of a scrubbed environment; stdin is closed. */
export function sluice(
  args: string[],
  env: Record<string, string>,
  options: { skewMs?: number } = {},
): CliRun {
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('SLUICE_') && k !== 'XDG_CONFIG_HOME') base[k] = v;
  }
  const nodeArgs =
    options.skewMs === undefined ? [SLUICE_BIN] : ['--import', SKEW_CLOCK, SLUICE_BIN];
  const child = spawn(process.execPath, [...nodeArgs, ...args], {
    env: {
      ...base,
      ...env,
      // spawn leaves out variables whose value is undefined.
      SLUICE_TEST_CLOCK_SKEW_MS: options.skewMs === undefined ? undefined : String(options.skewMs),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const done = new Promise<Awaited<CliRun['done']>>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done, stderr: () => stderr };
}

/** Runs `sluice ...args` to the end; rejects with its stderr when it exits non-zero. */
export async function sluiceOk(
  args: string[],
  env: Record<string, string>,
  options: { skewMs?: number } = {},
): Promise<string> {
  const r = await sluice(args, env, options).done;
  if (r.code !== 0) throw new Error(`sluice ${args[0]} exited ${r.code ?? r.signal}: ${r.stderr}`);
  return r.stdout;
}

/** Resolves with the URL once `sluice serve` prints `listening on URL`. */
export function listening(run: CliRun): Promise<string> {
  return new Promise((resolve, reject) => {
    const onData = () => {
      const m = /listening on (http:\/\/\S+)/.exec(run.stderr());
      if (m?.[1]) {
        run.child.stderr?.off('data', onData);
        resolve(m[1]);
      }
    };
    run.child.stderr?.on('data', onData);
    run.done.then((r) => reject(new Error(`serve exited (${r.code ?? r.signal}): ${r.stderr}`)));
  });
}
