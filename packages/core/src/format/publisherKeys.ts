import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SluiceError } from '@sluice/protocol';
import { ownerOnlyFile } from '../platform/ownerOnlyFile.js';
import { toSluiceError } from '../platform/toSluiceError.js';
import { publicKeyObject, publisherPublicKey } from './manifestSignature.js';

/** A publisher key read from its file: the private key and its public key (raw, base64). */
export interface PublisherKey {
  privateKey: KeyObject;
  publicKey: string;
}

const RAW_KEY = /^[A-Za-z0-9+/]{43}=$/;
const PEM_BLOCK = /-----BEGIN ([A-Z ]+)-----[\s\S]*?-----END \1-----/g;

/**
 * Writes a fresh Ed25519 publisher key to `path` as PKCS#8 PEM, mode 0600 (its directory 0700
 * when created); refuses to replace an existing file. Returns it with its public key.
 */
export async function generatePublisherKey(path: string): Promise<PublisherKey> {
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' });
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await writeFile(path, pem, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new SluiceError('ERR_IO', `${path} exists; refusing to replace a publisher key`, {
        path,
        syscall: 'open',
      });
    }
    throw toSluiceError(e, `writing ${path}`);
  }
  return { privateKey, publicKey: publisherPublicKey(privateKey) };
}

/** Reads a publisher key (PKCS#8 PEM, Ed25519) from a file only its owner can read. */
export async function readPublisherKey(path: string): Promise<PublisherKey> {
  const advice = `run \`chmod 600 ${path}\` (and consider the key leaked)`;
  if (!ownerOnlyFile(path, 'publisher key', advice)) {
    throw new SluiceError('ERR_IO', `no publisher key at ${path}`, { path });
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(await readFile(path, 'utf8'));
  } catch (e) {
    if (isFsError(e)) throw toSluiceError(e, `reading ${path}`);
    throw new SluiceError('ERR_INVALID_ARG', `${path} is not a PEM private key`, { cause: e });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new SluiceError('ERR_INVALID_ARG', `${path} is not an Ed25519 key`);
  }
  return { privateKey, publicKey: publisherPublicKey(privateKey) };
}

/**
 * The public keys in `text`: PEM blocks (a public key, or a private key whose public half is
 * meant), else one raw key (32 bytes, base64) per line, `#` starting a comment.
 */
export function parsePublicKeys(text: string, source: string): string[] {
  const blocks = text.match(PEM_BLOCK);
  if (blocks !== null) {
    return blocks.map((pem) => {
      try {
        const key: KeyObject = pem.includes('PRIVATE KEY')
          ? createPrivateKey(pem)
          : createPublicKey(pem);
        return publisherPublicKey(key);
      } catch (e) {
        throw new SluiceError('ERR_INVALID_ARG', `${source}: not an Ed25519 PEM key`, { cause: e });
      }
    });
  }
  const keys = text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line !== '');
  for (const k of keys) checkRawKey(k, source);
  if (keys.length === 0) throw new SluiceError('ERR_INVALID_ARG', `${source} holds no public key`);
  return keys;
}

/**
 * A trust list from its entries: each a public key (32 bytes, base64) or a file of them (see
 * `parsePublicKeys`). The keys, in order, without repeats.
 */
export async function readTrustedPublishers(entries: readonly string[]): Promise<string[]> {
  const keys: string[] = [];
  for (const entry of entries.map((e) => e.trim()).filter((e) => e !== '')) {
    if (RAW_KEY.test(entry)) {
      keys.push(checkRawKey(entry, 'trusted publisher'));
      continue;
    }
    let text: string;
    try {
      text = await readFile(entry, 'utf8');
    } catch (e) {
      throw toSluiceError(e, `reading the trusted-publisher file ${entry}`);
    }
    keys.push(...parsePublicKeys(text, entry));
  }
  return [...new Set(keys)];
}

function checkRawKey(key: string, source: string): string {
  try {
    publicKeyObject(key);
  } catch {
    throw new SluiceError(
      'ERR_INVALID_ARG',
      `${source}: ${JSON.stringify(key.slice(0, 60))} is not a public key (32 bytes, standard base64)`,
    );
  }
  return key;
}

function isFsError(e: unknown): boolean {
  return typeof (e as { syscall?: unknown } | null)?.syscall === 'string';
}
