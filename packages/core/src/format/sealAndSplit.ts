import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  checkIv,
  checkKey,
  checkOptions,
  checkPath,
  checkSize,
  DEFAULT_CHUNK_SIZE,
  type Manifest,
} from '@sluice/protocol';
import { concat, sha256File, split } from '../crypto/cryptoBackend.js';
import { tempPathFor } from '../platform/atomicOutput.js';
import { writeFileAtomic } from '../platform/atomicWrite.js';
import { toSluiceError } from '../platform/toSluiceError.js';
import { buildManifest } from './manifest.js';
import { type OpenOptions, openFile, sealFile } from './sealedBlob.js';
import { smallPartSize } from './smallPartSize.js';

export interface SealAndSplitOptions {
  /** Directory for `<name>.small`, `<name>.big` and `<name>.manifest.json` (name = basename of src). */
  dir?: string;
  /** Explicit output paths instead of `dir`; the manifest file is written only when given. */
  paths?: { small: string; big: string; manifest?: string };
  /** Data key; default 32 random bytes. */
  key?: Buffer | Uint8Array;
  /** IV; default 16 random bytes. */
  iv?: Buffer | Uint8Array;
  smallSizeKB: number;
  /** Big-part chunk size, a positive multiple of 16; default 8 MiB. */
  chunkSize?: number;
  signal?: AbortSignal;
}

export interface SealAndSplitResult {
  smallPath: string;
  bigPath: string;
  /** Set when a manifest file was written. */
  manifestPath?: string;
  /** The layout of the split (a v1 manifest: no resource yet); `toManifestV2` makes it v2. */
  manifest: Manifest;
  /** Lower-case hex SHA-256 of the small part. */
  smallSha256: string;
  key: Buffer;
  iv: Buffer;
}

/**
 * The upload path: seals `src` with a fresh (or given) key and IV, splits the blob into the small
 * part (kept by the API) and the big part (for the CDN), and hashes the big part's chunks into
 * the manifest. The sealed blob only exists as a temp file beside the big part.
 */
export async function sealAndSplit(
  src: string,
  opts: SealAndSplitOptions,
): Promise<SealAndSplitResult> {
  checkPath(src, 'src');
  const o = checkOptions<SealAndSplitOptions>(opts);
  let smallPath: string;
  let bigPath: string;
  let manifestPath: string | undefined;
  if (o.paths !== undefined) {
    smallPath = checkPath(o.paths.small, 'paths.small');
    bigPath = checkPath(o.paths.big, 'paths.big');
    if (o.paths.manifest !== undefined)
      manifestPath = checkPath(o.paths.manifest, 'paths.manifest');
  } else if (o.dir !== undefined) {
    const dir = checkPath(o.dir, 'dir');
    const name = basename(src);
    smallPath = join(dir, `${name}.small`);
    bigPath = join(dir, `${name}.big`);
    manifestPath = join(dir, `${name}.manifest.json`);
  } else {
    throw new TypeError('sealAndSplit needs either dir or paths');
  }
  const smallSizeKB = checkSize(o.smallSizeKB, 'smallSizeKB');
  if (smallSizeKB === 0) throw new RangeError('smallSizeKB must be at least 1');
  const chunkSize = o.chunkSize ?? DEFAULT_CHUNK_SIZE;
  checkSize(chunkSize, 'chunkSize');
  if (chunkSize === 0 || chunkSize % 16 !== 0) {
    throw new RangeError(`chunkSize must be a positive multiple of 16, got ${chunkSize}`);
  }
  const key = o.key === undefined ? randomBytes(32) : Buffer.from(checkKey(o.key));
  const iv = o.iv === undefined ? randomBytes(16) : Buffer.from(checkIv(o.iv));
  const signal = o.signal;

  const blobPath = tempPathFor(join(dirname(bigPath), `${basename(src)}.blob`));
  try {
    const { size } = await sealFile(src, blobPath, key, { iv, signal });
    const smallSize = smallPartSize(size, smallSizeKB);
    await split(blobPath, smallPath, bigPath, smallSize, { signal });
    const [manifest, smallDigest] = await Promise.all([
      buildManifest(bigPath, { smallSize, chunkSize, signal }),
      sha256File(smallPath, { signal }),
    ]);
    if (manifestPath !== undefined) await writeManifest(manifestPath, manifest);
    const smallSha256 = smallDigest.toString('hex');
    return { smallPath, bigPath, manifestPath, manifest, smallSha256, key, iv };
  } finally {
    await rm(blobPath, { force: true });
  }
}

async function writeManifest(path: string, manifest: Manifest): Promise<void> {
  try {
    // 0666 less the umask, as any file the user creates: a manifest holds no secret.
    await writeFileAtomic(path, `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o666 });
  } catch (e) {
    throw toSluiceError(e, `writing ${path}`);
  }
}

/** Local reassembly: concatenates the small and big parts and opens the blob into `dst`. */
export async function joinAndOpen(
  smallPath: string,
  bigPath: string,
  dst: string,
  key: Buffer | Uint8Array,
  opts?: OpenOptions,
): Promise<{ size: number }> {
  checkPath(smallPath, 'smallPath');
  checkPath(bigPath, 'bigPath');
  checkPath(dst, 'dst');
  checkKey(key);
  const o = checkOptions<OpenOptions>(opts);
  const blobPath = tempPathFor(join(dirname(dst), `${basename(dst)}.blob`));
  try {
    await concat([smallPath, bigPath], blobPath, { signal: o.signal });
    return await openFile(blobPath, dst, key, o);
  } finally {
    await rm(blobPath, { force: true });
  }
}
