import { randomBytes } from 'node:crypto';
import { link, open, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { throwIfAborted } from './abort.js';
import { toSluiceError } from './toSluiceError.js';

/**
 * `.<name>.sluice-<pid><random>.tmp` next to `dst` (the writer's pid as 8 hex digits, then 12
 * random ones), so the final rename never crosses filesystems and a later writer can tell the
 * temp file of a process that died (SIGKILL, power cut) from one still being written.
 */
export function tempPathFor(dst: string): string {
  const pid = (process.pid >>> 0).toString(16).padStart(8, '0');
  return join(dirname(dst), `.${basename(dst)}.sluice-${pid}${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Whether `name`, in the directory of `dst`, is the temp file of a write to `dst` (also one in the
 * older `.<name>.<random>.tmp` form). For a caller that holds the directory's lock: every such
 * file is then a crash's leftover.
 */
export function isTempFileOf(dst: string, name: string): boolean {
  return name.startsWith(`.${basename(dst)}.`) && name.endsWith('.tmp');
}

/**
 * Removes the temp files beside `dst` left by writers that no longer run (a pull SIGKILLed
 * half-way leaves partial plaintext there, which no `finally` could remove). Called after a
 * write to `dst` completed. Temp files of live processes, of this one, and names without a pid
 * are left alone. Best effort: a failure here never fails the write that succeeded.
 */
export async function removeStaleTemps(dst: string): Promise<void> {
  const prefix = `.${basename(dst)}.sluice-`;
  let names: string[];
  try {
    names = await readdir(dirname(dst));
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const id = name.slice(prefix.length, -'.tmp'.length);
    if (!/^[0-9a-f]{20}$/.test(id)) continue;
    const pid = Number.parseInt(id.slice(0, 8), 16);
    if (pid === process.pid || processRuns(pid)) continue;
    await rm(join(dirname(dst), name), { force: true }).catch(() => {});
  }
}

function processRuns(pid: number): boolean {
  if (pid <= 0) return true; // not a pid we wrote: leave it
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH'; // EPERM: it runs, as another user
  }
}

export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  // Makes the rename durable; some filesystems refuse fsync on a directory, which is harmless.
  try {
    await fsyncPath(dir);
  } catch {}
}

export interface CommitOptions {
  /** fsync the temp files first (false when the writer already did). */
  fsync: boolean;
  /** Link instead of rename: fail with EEXIST rather than replace an existing destination. */
  exclusive?: boolean;
}

/**
 * Puts finished temp files in place of their destinations: fsync, rename (or link), fsync of each
 * directory so the rename survives a power cut, then removal of dead writers' temps. Failures
 * are the node:fs errors; the caller removes the temps.
 */
export async function commitTemps(
  temps: readonly string[],
  dsts: readonly string[],
  options: CommitOptions,
): Promise<void> {
  if (options.fsync) await Promise.all(temps.map(fsyncPath));
  for (let i = 0; i < temps.length; i++) {
    const temp = temps[i] as string;
    if (options.exclusive === true) {
      await link(temp, dsts[i] as string);
      await rm(temp, { force: true });
    } else {
      await rename(temp, dsts[i] as string);
    }
  }
  await Promise.all([...new Set(dsts.map((d) => dirname(d)))].map(fsyncDir));
  for (const d of dsts) await removeStaleTemps(d);
}

export interface AtomicOptions {
  signal?: AbortSignal | undefined;
  /** fsync the temp files before the rename (false when the writer already did, e.g. native). */
  fsync?: boolean;
}

/**
 * Runs `write` against temp files beside each destination, then fsyncs and renames them into
 * place. On any failure or abort every temp file is removed and the destinations are untouched.
 */
export async function atomicOutput<T>(
  dsts: readonly string[],
  options: AtomicOptions,
  write: (temps: string[]) => Promise<T>,
): Promise<T> {
  const temps = dsts.map(tempPathFor);
  try {
    throwIfAborted(options.signal);
    // Created owner-only and exclusively, before either backend opens them: plaintext outputs are
    // never readable by other users, and a name collision can never clobber a foreign file.
    for (const t of temps) await writeFile(t, '', { mode: 0o600, flag: 'wx' });
    const result = await write(temps);
    throwIfAborted(options.signal);
    await commitTemps(temps, dsts, { fsync: options.fsync !== false });
    return result;
  } catch (e) {
    await Promise.all(temps.map((t) => rm(t, { force: true })));
    throw toSluiceError(e, 'writing output');
  }
}
