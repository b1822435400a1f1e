import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvelopeResource } from '@sluice/protocol';
import type { Session } from '../http/session.js';
import { type LoadBigSmallOptions, loadBigSmallResource } from './loadBigSmallResource.js';
import { checkResourceName } from './resourceName.js';
import { type UploadBigSmallOptions, uploadBigSmallResource } from './uploadBigSmallResource.js';

export type LoadBytesOptions = Omit<LoadBigSmallOptions, 'to' | 'cacheDir'>;

/**
 * A small resource (a config, a label map) as bytes in memory: the same device envelope and
 * verified chunk-wise decryption as `loadBigSmallResource`, nothing written to disk.
 */
export async function loadBytes(
  session: Session,
  name: string,
  folder: string,
  options: LoadBytesOptions,
): Promise<Buffer> {
  const { data } = await loadBigSmallResource(session, name, folder, { ...options, to: 'buffer' });
  return data;
}

/**
 * Uploads a file, or bytes held in memory, as a new version of `folder/name`, sealed and split
 * like any big/small resource. Bytes are written to a private temp file (0600) only for as long as
 * the upload takes.
 */
export async function uploadFile(
  session: Session,
  source: string | Uint8Array,
  name: string,
  folder: string,
  options: UploadBigSmallOptions = {},
): Promise<EnvelopeResource> {
  checkResourceName(folder, 'folder');
  checkResourceName(name, 'name');
  if (typeof source === 'string') {
    return uploadBigSmallResource(session, source, name, folder, options);
  }
  if (!(source instanceof Uint8Array)) {
    throw new TypeError('source must be a file path or a Uint8Array');
  }
  const dir = await mkdtemp(join(options.tempDir ?? tmpdir(), 'sluice-bytes-'));
  try {
    const path = join(dir, 'source');
    await writeFile(path, source, { mode: 0o600 });
    return await uploadBigSmallResource(session, path, name, folder, options);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
