import type { Session } from '../http/session.js';
import { pull } from './pull.js';
import type { PullOptions } from './pullOptions.js';

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
