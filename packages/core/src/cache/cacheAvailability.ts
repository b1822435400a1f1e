import { randomBytes } from 'node:crypto';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Why a cache directory cannot be used (a pull then goes on without it). */
export type CacheProblemKind =
  | 'read-only'
  | 'not a directory'
  | 'cannot create'
  | 'no space'
  | 'I/O error';

export interface CacheProblem {
  kind: CacheProblemKind;
  /** The cache directory. */
  dir: string;
  /** The errno code that showed it (EROFS, ENOTDIR, ENOSPC…), when one did. */
  errno?: string;
  /** One line for a person: `cache /x is unusable (read-only: EROFS)`. */
  message: string;
}

const KIND_OF_ERRNO: Record<string, CacheProblemKind> = {
  EROFS: 'read-only',
  EACCES: 'read-only',
  EPERM: 'read-only',
  ENOSPC: 'no space',
  EDQUOT: 'no space',
  EFBIG: 'no space',
  EIO: 'I/O error',
  ENOTDIR: 'cannot create',
  EEXIST: 'cannot create',
  ENOENT: 'cannot create',
  ELOOP: 'cannot create',
  ENAMETOOLONG: 'cannot create',
};

/**
 * The errno code of a node:fs error, also when it is wrapped (a SluiceError ERR_IO's cause);
 * `EISDIR` for Node's own `ERR_FS_EISDIR` and the like.
 */
function errnoCode(e: unknown): string | undefined {
  for (let cur = e, depth = 0; cur !== null && typeof cur === 'object' && depth < 4; depth++) {
    const { code, syscall } = cur as { code?: unknown; syscall?: unknown };
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
    if (typeof code === 'string' && typeof syscall === 'string' && code.startsWith('ERR_FS_')) {
      return code.slice('ERR_FS_'.length);
    }
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

function problem(
  dir: string,
  kind: CacheProblemKind,
  errno?: string,
  detail?: string,
): CacheProblem {
  const why = [errno, detail].filter((s) => s !== undefined).join(', ');
  return {
    kind,
    dir,
    errno,
    message: `cache ${dir} is unusable (${kind}${why ? `: ${why}` : ''})`,
  };
}

/**
 * The cache problem a failed file-system call on the cache shows (an errno this table does not
 * name is an I/O error), or undefined when `e` is no file-system failure (an abort, a bad digest:
 * those are not the cache's).
 */
export function cacheProblemOf(e: unknown, dir: string): CacheProblem | undefined {
  const errno = errnoCode(e);
  return errno === undefined ? undefined : problem(dir, KIND_OF_ERRNO[errno] ?? 'I/O error', errno);
}

/**
 * Whether a pull can keep its big part in `dir`: undefined when it can, else why not. With
 * `create` the directory is made (owner-only) when missing, as a pull does; without it (`cache
 * verify`) a missing directory is fine when it could be made. An existing directory is probed by
 * writing one byte into a fresh file and removing it, which is what fails for root too on a
 * read-only mount, an immutable directory or a full disk.
 */
export async function cacheDirProblem(
  dir: string,
  options: { create: boolean },
): Promise<CacheProblem | undefined> {
  const found = await stat(dir).catch((e: NodeJS.ErrnoException) => e);
  if (found instanceof Error) {
    if (found.code !== 'ENOENT') return cannotCreate(dir, found);
    if (!options.create) return creatable(dir);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      // A recursive mkdir can report ENOENT for a read-only parent: its ancestors say why.
      return (await creatable(dir)) ?? cannotCreate(dir, e);
    }
  } else if (!found.isDirectory()) {
    return problem(dir, 'not a directory', undefined, 'it is a file');
  }
  return probeWrite(dir);
}

/** A failed mkdir or stat: ENOSPC is a full disk, anything else means the cache cannot be made. */
function cannotCreate(dir: string, e: unknown): CacheProblem {
  const errno = errnoCode(e);
  if (errno === 'ENOSPC' || errno === 'EDQUOT') return problem(dir, 'no space', errno);
  const detail = errno === 'ENOTDIR' ? 'a parent is a file' : undefined;
  return problem(dir, 'cannot create', errno, detail);
}

/**
 * For a missing cache: its nearest existing ancestor must be a directory this process can write
 * a file into (probed there as in an existing cache), or the cache could not be made.
 */
async function creatable(dir: string): Promise<CacheProblem | undefined> {
  for (let parent = dirname(dir), child = dir; parent !== child; ) {
    const st = await stat(parent).catch(() => undefined);
    if (st !== undefined) {
      if (!st.isDirectory()) return problem(dir, 'cannot create', 'ENOTDIR', `${parent} is a file`);
      const found = await probeWrite(parent);
      if (found === undefined) return undefined;
      const kind = found.kind === 'no space' ? 'no space' : 'cannot create';
      return problem(
        dir,
        kind,
        found.errno,
        kind === 'cannot create' ? `${parent} is ${found.kind}` : undefined,
      );
    }
    child = parent;
    parent = dirname(parent);
  }
  return undefined;
}

async function probeWrite(dir: string): Promise<CacheProblem | undefined> {
  // Matches none of the cache's entry or leftover names (cacheLayout.ts).
  const path = join(dir, `.sluice-probe-${process.pid}-${randomBytes(6).toString('hex')}`);
  let created = false;
  try {
    const fh = await open(path, 'wx', 0o600);
    created = true;
    try {
      await fh.write(Buffer.of(0), 0, 1, 0);
    } finally {
      await fh.close();
    }
    return undefined;
  } catch (e) {
    return cacheProblemOf(e, dir) ?? problem(dir, 'I/O error', errnoCode(e));
  } finally {
    if (created) await rm(path, { force: true }).catch(() => {});
  }
}
