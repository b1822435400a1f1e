import { randomBytes } from 'node:crypto';
import { close } from 'node:fs';
import { link, open, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { Binding } from '@sluice/native';
import { SluiceError } from '@sluice/protocol';
import { loadNative } from '../crypto/loadNative.js';
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

const closeFd = promisify(close);

/** The two addon calls an anonymous output needs. */
export type AnonymousOps = Pick<Binding, 'openAnonymous' | 'linkAnonymous'>;

/**
 * A file being written for `dst`, not yet in place. Writers open `path` as they would any file.
 * With the addon on Linux it is an anonymous file (O_TMPFILE, reached as `/proc/self/fd/N`):
 * it has no name until `name()`, so a process killed half-way leaves no partial plaintext on
 * disk. Elsewhere it is a named temp file beside `dst` (created 0600 and exclusively), which
 * `discard()` removes on every exit path a process survives and `removeStaleTemps` after a crash.
 */
export interface OutputFile {
  readonly path: string;
  readonly anonymous: boolean;
  /** Gives the finished content a temp name beside `dst` (the caller renames it into place). */
  name(): Promise<string>;
  /** Drops the content: closes the anonymous file, or removes the temp (and any name given). */
  discard(): Promise<void>;
  /** Makes an fs error about this output name `dst`, not `/proc/self/fd/N`; returns it. */
  blame(e: unknown): unknown;
}

/** The addon's anonymous-file calls when it loads and has them (Linux), else null. */
export function anonymousOps(): AnonymousOps | null {
  if (process.platform !== 'linux') return null;
  const b = loadNative().binding;
  if (typeof b?.openAnonymous !== 'function' || typeof b.linkAnonymous !== 'function') {
    return null;
  }
  return b;
}

// O_TMPFILE refused by the filesystem (EOPNOTSUPP; EISDIR/EINVAL from kernels without it).
const NO_TMPFILE = new Set([95, 21, 22]);

/**
 * Opens the output for `dst`: anonymous where `ops` can, a named temp file otherwise (null).
 * A missing directory is ERR_IO naming `dst` and that directory, not the temp file.
 */
export async function openOutputFile(
  dst: string,
  ops: AnonymousOps | null = anonymousOps(),
): Promise<OutputFile> {
  try {
    if (ops !== null) {
      try {
        return anonymousOutput(dst, await ops.openAnonymous(dirname(dst)), ops);
      } catch (e) {
        if (!NO_TMPFILE.has((e as { errno?: number }).errno ?? 0)) throw e;
      }
    }
    return await namedOutput(dst);
  } catch (e) {
    const { code, errno } = e as { code?: unknown; errno?: unknown };
    if (code !== 'ENOENT' && !(typeof errno === 'number' && Math.abs(errno) === 2)) throw e;
    throw new SluiceError(
      'ERR_IO',
      `cannot write ${dst}: directory ${dirname(dst)} does not exist`,
      { cause: e, path: dst, syscall: 'open', errno: 2 },
    );
  }
}

function anonymousOutput(dst: string, fd: number, ops: AnonymousOps): OutputFile {
  let open = true;
  let temp: string | undefined;
  const closeOnce = async () => {
    if (!open) return;
    open = false;
    await closeFd(fd);
  };
  const path = `/proc/self/fd/${fd}`;
  return {
    path,
    anonymous: true,
    async name() {
      const t = tempPathFor(dst);
      await ops.linkAnonymous(fd, t);
      temp = t;
      await closeOnce();
      return t;
    },
    async discard() {
      await closeOnce().catch(() => {});
      if (temp !== undefined) await rm(temp, { force: true });
    },
    blame(e) {
      const err = e as { path?: unknown } | null;
      if (err?.path === path) (err as { path: string }).path = dst;
      return e;
    },
  };
}

async function namedOutput(dst: string): Promise<OutputFile> {
  const temp = tempPathFor(dst);
  // Owner-only and exclusive: plaintext is never readable by other users, and a name
  // collision can never clobber a foreign file.
  await writeFile(temp, '', { mode: 0o600, flag: 'wx' });
  return {
    path: temp,
    anonymous: false,
    name: async () => temp,
    discard: () => rm(temp, { force: true }),
    blame: (e) => e,
  };
}

export interface AtomicOptions {
  signal?: AbortSignal | undefined;
  /** fsync the temp files before the rename (false when the writer already did, e.g. native). */
  fsync?: boolean;
}

/**
 * Runs `write` against an output file for each destination (see `OutputFile`), then fsyncs and
 * renames them into place. On any failure or abort every output is dropped and the
 * destinations are untouched.
 */
export async function atomicOutput<T>(
  dsts: readonly string[],
  options: AtomicOptions,
  write: (temps: string[]) => Promise<T>,
): Promise<T> {
  const outputs: OutputFile[] = [];
  try {
    throwIfAborted(options.signal);
    // Opened before either backend writes: anonymous where it can be, owner-only either way.
    for (const d of dsts) outputs.push(await openOutputFile(d));
    const result = await write(outputs.map((o) => o.path));
    throwIfAborted(options.signal);
    const temps: string[] = [];
    for (const o of outputs) temps.push(await o.name());
    await commitTemps(temps, dsts, { fsync: options.fsync !== false });
    return result;
  } catch (e) {
    await Promise.all(outputs.map((o) => o.discard()));
    for (const o of outputs) o.blame(e);
    throw toSluiceError(e, 'writing output');
  }
}
