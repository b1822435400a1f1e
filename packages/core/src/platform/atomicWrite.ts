import { rm, writeFile } from 'node:fs/promises';
import { commitTemps, tempPathFor } from './atomicOutput.js';

export interface WriteFileAtomicOptions {
  /** Mode of the new file (default 0o600; the umask applies). */
  mode?: number;
  /** Fail with EEXIST instead of replacing an existing file, so two writers never clobber each other. */
  exclusive?: boolean;
}

/**
 * Writes `data` to `path` so that readers (and a crash) see the old content or the new one, never
 * a mix: a temp file beside it, fsynced, renamed (or linked) into place, then the directory
 * fsynced — the routine of the streaming `atomicOutput`. The temp file is removed on any
 * failure, which rejects with the node:fs error (EEXIST for `exclusive`), as `fs.writeFile` does.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const temp = tempPathFor(path);
  try {
    await writeFile(temp, data, { mode: options.mode ?? 0o600, flag: 'wx', flush: true });
    await commitTemps([temp], [path], { fsync: false, exclusive: options.exclusive });
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
}
