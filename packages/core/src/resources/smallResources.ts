import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvelopeResource } from '@sluice/protocol';
import type { Session } from '../http/session.js';
import { pull } from './pull.js';
import type { PullOptions } from './pullOptions.js';
import { checkResourceName } from './resourceName.js';
import { type UploadBigSmallOptions, uploadBigSmallResource } from './uploadBigSmallResource.js';

export type PullBytesOptions = Omit<PullOptions, 'to' | 'cacheDir'>;

/**
 * A small resource (a config, a label map) as bytes in memory: the same device envelope and
 * verified chunk-wise decryption as `pull`, nothing written to disk.
 */
export async function pullBytes(
  session: Session,
  folder: string,
  name: string,
  options: PullBytesOptions,
): Promise<Buffer> {
  const { data } = await pull(session, folder, name, { ...options, to: 'buffer' });
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
