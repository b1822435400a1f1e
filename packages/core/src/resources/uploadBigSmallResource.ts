import { openAsBlob } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { throwIfAborted } from '../crypto/abort.js';
import type { EnvelopeResource } from '../format/envelope.js';
import { DEFAULT_CHUNK_SIZE } from '../format/manifest.js';
import { sealAndSplit } from '../format/sealAndSplit.js';
import type { Session } from '../session/session.js';
import { checkResourceName } from './resourceName.js';

/** Default cap of the small part in KiB (the split rule also caps it at 30% of the blob). */
export const DEFAULT_SMALL_SIZE_KB = 1024;

export interface UploadBigSmallOptions {
  /** Cap of the small part in KiB (default 1024); see docs/FORMAT.md for the split rule. */
  smallSizeKB?: number;
  /** Big-part chunk size, a positive multiple of 16 (default 8 MiB). */
  chunkSize?: number;
  /** Directory for the sealed parts while they are sent (default the OS temp directory). */
  tempDir?: string;
  signal?: AbortSignal;
}

/**
 * Seals `path` with a fresh data key, splits it and uploads the small part, the big part, the
 * manifest and the data key as a new version of `folder/name`. The parts are streamed from temp
 * files, which are removed whatever happens.
 */
export async function uploadBigSmallResource(
  session: Session,
  path: string,
  name: string,
  folder: string,
  options: UploadBigSmallOptions = {},
): Promise<EnvelopeResource> {
  const { signal } = options;
  checkResourceName(folder, 'folder');
  checkResourceName(name, 'name');
  throwIfAborted(signal);
  const dir = await mkdtemp(join(options.tempDir ?? tmpdir(), 'sluice-upload-'));
  let key: Buffer | undefined;
  try {
    const sealed = await sealAndSplit(path, {
      paths: { small: join(dir, 'small'), big: join(dir, 'big') },
      smallSizeKB: options.smallSizeKB ?? DEFAULT_SMALL_SIZE_KB,
      chunkSize: options.chunkSize ?? DEFAULT_CHUNK_SIZE,
      ...(signal ? { signal } : {}),
    });
    key = sealed.key;
    const dataKey = sealed.key.toString('base64');
    const manifest = JSON.stringify(sealed.manifest);
    const small = await openAsBlob(sealed.smallPath);
    const big = await openAsBlob(sealed.bigPath);
    // A fresh FormData per attempt: the file parts are read lazily from disk each time.
    const form = () => {
      const f = new FormData();
      f.append('name', name);
      f.append('manifest', manifest);
      f.append('dataKey', dataKey);
      f.append('small', small, 'small');
      f.append('big', big, 'big');
      return f;
    };
    const created = await session.request<EnvelopeResource>(
      'POST',
      `/resources/${encodeURIComponent(folder)}`,
      { body: form, ...(signal ? { signal } : {}) },
    );
    return { folder: created.folder, name: created.name, version: created.version };
  } finally {
    key?.fill(0);
    await rm(dir, { recursive: true, force: true });
  }
}
