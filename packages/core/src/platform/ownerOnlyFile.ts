import { lstatSync } from 'node:fs';
import { SluiceError } from '@sluice/protocol';

/**
 * Checks that `path` (a `what`: "saved login", "key file") is a regular file that neither group
 * nor others can access: one they could may already be copied, so it is refused with
 * ERR_INSECURE_FILE and `advice`. False when the file does not exist; ERR_IO when it cannot be
 * examined.
 */
export function ownerOnlyFile(path: string, what: string, advice: string): boolean {
  let info: ReturnType<typeof lstatSync>;
  try {
    info = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new SluiceError('ERR_IO', `cannot read the ${what} ${path}`, { cause: e, path });
  }
  if (!info.isFile()) {
    throw new SluiceError('ERR_INSECURE_FILE', `the ${what} ${path} is not a regular file`, {
      path,
    });
  }
  if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8);
    throw new SluiceError(
      'ERR_INSECURE_FILE',
      `the ${what} ${path} is accessible by group or others (mode ${mode}); ${advice}`,
      { path },
    );
  }
  return true;
}
