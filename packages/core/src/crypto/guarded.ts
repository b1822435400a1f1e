import { stat } from 'node:fs/promises';
import { toSluiceError } from '../platform/toSluiceError.js';

/** Runs `body`, turning any backend failure into a SluiceError that keeps the caller's stack. */
export async function guarded<T>(what: string, body: () => Promise<T>): Promise<T> {
  const stackFrom = new Error(what);
  try {
    return await body();
  } catch (e) {
    throw toSluiceError(e, what, stackFrom);
  }
}

/** The size of the file `path` (the argument `name`), as a SluiceError when it cannot be read. */
export async function sizeOf(path: string, name: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (e) {
    throw toSluiceError(e, `${name} ${path}`);
  }
}
