import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { UsageError } from './command.js';
import type { Flag } from './flags.js';

/** `--key-file FILE` of encrypt and decrypt. */
export const keyFileFlag = {
  type: 'string',
  value: 'FILE',
  help: 'the data key as 64 hex characters',
} satisfies Flag;

/** The `--key-file` value, which encrypt and decrypt cannot do without. */
export function requiredKeyFile(value: string | undefined): string {
  if (value === undefined) throw new UsageError('--key-file is required');
  return value;
}

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
