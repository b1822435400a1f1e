import { randomBytes } from 'node:crypto';
import { link, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** File mode of the new file (default 0o600). */
  mode?: number;
  /**
   * `replace` (default) renames over an existing file; `create` links the temp file into place
   * and fails with EEXIST if the target exists, so two writers can never clobber each other.
   */
  flag?: 'replace' | 'create';
}

/** Temp files are `.<name>.<random>.tmp` next to the target, so a crash leaves them recognisable. */
export function isTempFileOf(target: string, candidate: string): boolean {
  const name = basename(target);
  return candidate.startsWith(`.${name}.`) && candidate.endsWith('.tmp');
}

/**
 * Writes `data` to `path` so that readers see the old content or the new one, never a mix: a temp
 * file in the same directory, fsync, rename (or link), then fsync of the directory so the rename
 * itself survives a power cut. The temp file is removed on every failure.
 */
export async function atomicWriteFile(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', options.mode ?? 0o600);
  let placed = false;
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.flag === 'create') {
      await link(tmp, path);
    } else {
      await rename(tmp, path);
      placed = true;
    }
  } finally {
    if (!placed) await unlink(tmp).catch(() => {});
  }
  await syncDir(dir);
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
