import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { MiB } from '../units.js';

/**
 * Writes a pseudo-model of random-looking bytes, as real weights are (AES gains nothing from
 * repetition): an AES-256-CTR keystream under a throwaway key, hashed as it is written. Returns
 * the hex SHA-256.
 */
export async function writePseudoModel(
  path: string,
  size: number,
  signal: AbortSignal,
): Promise<string> {
  const cipher = createCipheriv('aes-256-ctr', randomBytes(32), randomBytes(16));
  const zeros = Buffer.alloc(8 * MiB);
  const hash = createHash('sha256');
  const fh = await open(path, 'wx', 0o600);
  try {
    for (let done = 0; done < size; ) {
      signal.throwIfAborted();
      const n = Math.min(zeros.length, size - done);
      const block = cipher.update(zeros.subarray(0, n));
      hash.update(block);
      let written = 0;
      while (written < block.length) {
        written += (await fh.write(block, written, block.length - written)).bytesWritten;
      }
      done += n;
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}
