import { existsSync } from 'node:fs';
import { type PublisherKey, readPublisherKey, readTrustedPublishers } from '@sluice/core';
import { publisherKeyPath } from './config.js';
import type { Flag } from './flags.js';

/** `--trust FILE…` of pull and batch. */
export const trustFlag = {
  type: 'string',
  value: 'FILE',
  multiple: true,
  help:
    'accept only resources signed by a public key in FILE (or given as the key itself); ' +
    'unsigned ones are refused (default $SLUICE_TRUSTED_PUBLISHERS, comma-separated)',
} satisfies Flag;

/** `--sign-key FILE` of keys: the publisher's private key file that generate writes and show, register read. */
export const publisherKeyFileFlag = {
  type: 'string',
  value: 'FILE',
  help: 'the publisher key file (PKCS#8 PEM, mode 0600; default <config dir>/publisher.key)',
} satisfies Flag;

/** `--sign-key FILE` of push: the same file as `keys --sign-key`. */
export const signKeyFlag = {
  type: 'string',
  value: 'FILE',
  help: 'sign the manifest with this publisher key (default <config dir>/publisher.key when it exists)',
} satisfies Flag;

/**
 * The trust list: `--trust` entries, else `$SLUICE_TRUSTED_PUBLISHERS` (comma-separated public keys
 * or files of them), else none (undefined: signatures are checked, any signer accepted).
 */
export async function trustList(
  flag: readonly string[] | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string[] | undefined> {
  const entries = flag ?? env.SLUICE_TRUSTED_PUBLISHERS?.split(',');
  if (entries === undefined || entries.every((e) => e.trim() === '')) return undefined;
  return readTrustedPublishers(entries);
}

/** The publisher key push signs with: `--sign-key`, else the default file when it exists. */
export async function signingKey(flag: string | undefined): Promise<PublisherKey | undefined> {
  if (flag !== undefined) return readPublisherKey(flag);
  const path = publisherKeyPath();
  return existsSync(path) ? readPublisherKey(path) : undefined;
}
