import { randomBytes } from 'node:crypto';
import { lstatSync, readFileSync } from 'node:fs';
import { mkdir, open, rename, rm, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SluiceError } from '@sluice/protocol';

/** What a `saveAuth` file holds. */
export interface SavedAuth {
  accessToken: string;
  refreshToken: string;
}

interface AuthFileContent extends SavedAuth {
  version: 1;
  /** The API these tokens belong to: a file written for another server is ignored. */
  apiUrl: string;
}

/**
 * Reads the saved tokens for `apiUrl`. Missing, unreadable-as-JSON, or other-server files give
 * undefined (the next login overwrites them). A file that group or others may read, or that is
 * not a regular file, is refused with ERR_INSECURE_FILE: its tokens may already be copied.
 */
export function readAuthFile(path: string, apiUrl: string): SavedAuth | undefined {
  let info: ReturnType<typeof lstatSync>;
  try {
    info = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SluiceError('ERR_IO', `cannot read the saved login ${path}`, { cause: e, path });
  }
  if (!info.isFile()) {
    throw new SluiceError('ERR_INSECURE_FILE', `the saved login ${path} is not a regular file`, {
      path,
    });
  }
  if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
    throw new SluiceError(
      'ERR_INSECURE_FILE',
      `the saved login ${path} is accessible by group or others (mode ` +
        `${(info.mode & 0o777).toString(8)}); its tokens may have been copied: delete it, or ` +
        'run `chmod 600` on it if you are sure nobody else read it',
      { path },
    );
  }
  let parsed: Partial<AuthFileContent>;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<AuthFileContent>;
  } catch {
    return undefined;
  }
  if (
    parsed === null ||
    typeof parsed !== 'object' ||
    parsed.version !== 1 ||
    parsed.apiUrl !== apiUrl ||
    typeof parsed.accessToken !== 'string' ||
    typeof parsed.refreshToken !== 'string'
  ) {
    return undefined;
  }
  return { accessToken: parsed.accessToken, refreshToken: parsed.refreshToken };
}

/**
 * Replaces the file atomically: a 0600 temp file in the same directory (created 0700 when
 * missing), written and fsynced, renamed over the old one, then the directory fsynced.
 */
export async function writeAuthFile(path: string, apiUrl: string, auth: SavedAuth): Promise<void> {
  const content: AuthFileContent = { version: 1, apiUrl, ...auth };
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(content)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => {});
    throw new SluiceError('ERR_IO', `cannot save the login to ${path}`, { cause: e, path });
  }
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // Some filesystems cannot fsync a directory; the rename is already done.
  }
}

/** Deletes the file; a missing file is fine. */
export async function deleteAuthFile(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new SluiceError('ERR_IO', `cannot delete the saved login ${path}`, { cause: e, path });
  }
}
