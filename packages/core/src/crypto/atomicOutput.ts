import { randomBytes } from 'node:crypto';
import { open, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { throwIfAborted } from './abort.js';
import { toSluiceError } from './toSluiceError.js';

/** `.<name>.sluice-<random>.tmp` next to `dst`, so the final rename never crosses filesystems. */
export function tempPathFor(dst: string): string {
  return join(dirname(dst), `.${basename(dst)}.sluice-${randomBytes(6).toString('hex')}.tmp`);
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
    if (options.fsync !== false) await Promise.all(temps.map(fsyncPath));
    for (let i = 0; i < temps.length; i++) {
      await rename(temps[i] as string, dsts[i] as string);
    }
    await Promise.all([...new Set(dsts.map((d) => dirname(d)))].map(fsyncDir));
    return result;
  } catch (e) {
    await Promise.all(temps.map((t) => rm(t, { force: true })));
    throw toSluiceError(e, 'writing output');
  }
}
