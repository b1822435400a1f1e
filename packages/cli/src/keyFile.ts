import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { UsageError } from './command.js';

/** Reads a 32-byte key stored as 64 hex characters. The key itself never reaches a message. */
export async function readKeyFile(path: string): Promise<Buffer> {
  const text = (await readFile(path, 'utf8')).trim();
  if (!/^[0-9a-fA-F]{64}$/.test(text)) {
    throw new UsageError(`key file ${path} must hold exactly 64 hex characters (a 256-bit key)`);
  }
  return Buffer.from(text, 'hex');
}

/** Creates a key file with a fresh random key, mode 0600; refuses to overwrite one. */
export async function createKeyFile(path: string): Promise<Buffer> {
  const key = randomBytes(32);
  await writeFile(path, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  return key;
}
