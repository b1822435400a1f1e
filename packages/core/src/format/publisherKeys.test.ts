import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../test-helpers.js';
import { publisherPublicKey } from './manifestSignature.js';
import {
  generatePublisherKey,
  parsePublicKeys,
  readPublisherKey,
  readTrustedPublishers,
} from './publisherKeys.js';

let dir: string;
beforeAll(async () => {
  dir = await tempDir();
});

describe('publisher key files', () => {
  it('generate writes PKCS#8 PEM, mode 0600, in a new 0700 directory, and refuses to overwrite', async () => {
    const path = join(dir, 'conf', 'publisher.key');
    const made = await generatePublisherKey(path);
    const pem = await readFile(path, 'utf8');
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(createPrivateKey(pem).asymmetricKeyType).toBe('ed25519');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'conf'))).mode & 0o777).toBe(0o700);
    expect(publisherPublicKey(createPrivateKey(pem))).toBe(made.publicKey);
    await expect(generatePublisherKey(path)).rejects.toMatchObject({
      code: 'ERR_IO',
      message: expect.stringMatching(/exists; refusing to replace/),
    });
    expect(await readFile(path, 'utf8')).toBe(pem);
    const read = await readPublisherKey(path);
    expect(read.publicKey).toBe(made.publicKey);
  });

  it('read refuses a key file others can read, a missing one, and one that is not Ed25519', async () => {
    const path = join(dir, 'open.key');
    await generatePublisherKey(path);
    await chmod(path, 0o644);
    await expect(readPublisherKey(path)).rejects.toMatchObject({ code: 'ERR_INSECURE_FILE' });
    await expect(readPublisherKey(join(dir, 'none.key'))).rejects.toMatchObject({
      code: 'ERR_IO',
    });
    const ec = join(dir, 'ec.key');
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    });
    await writeFile(ec, pem, { mode: 0o600 });
    await expect(readPublisherKey(ec)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    const junk = join(dir, 'junk.key');
    await writeFile(junk, 'not a key', { mode: 0o600 });
    await expect(readPublisherKey(junk)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
  });
});

describe('trust lists', () => {
  const a = generateKeyPairSync('ed25519');
  const b = generateKeyPairSync('ed25519');
  const A = publisherPublicKey(a.privateKey);
  const B = publisherPublicKey(b.privateKey);

  it('parses raw keys one a line with comments, and PEM public or private keys', () => {
    expect(parsePublicKeys(`# ours\n${A}\n\n  ${B}  # theirs\n`, 'f')).toEqual([A, B]);
    const pub = a.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const priv = b.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    expect(parsePublicKeys(`${pub}\n${priv}`, 'f')).toEqual([A, B]);
    expect(publisherPublicKey(createPublicKey(pub))).toBe(A);
  });

  it('refuses anything that is not a key, naming the source', () => {
    expect(() => parsePublicKeys('hello', 'trust.txt')).toThrow(
      /trust.txt: "hello" is not a public key/,
    );
    expect(() => parsePublicKeys(`${A.slice(0, -2)}=`, 'f')).toThrow(/is not a public key/);
    expect(() => parsePublicKeys('# nothing\n', 'empty.txt')).toThrow(
      /empty.txt holds no public key/,
    );
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
      type: 'spki',
      format: 'pem',
    }) as string;
    expect(() => parsePublicKeys(ec, 'ec.pem')).toThrow(/ec.pem: not an Ed25519 PEM key/);
  });

  it('takes keys and files of keys, in order, without repeats', async () => {
    const file = join(dir, 'trusted.pub');
    await writeFile(file, `${B}\n${A}\n`);
    expect(await readTrustedPublishers([A, ` ${file} `, '', A])).toEqual([A, B]);
    await expect(readTrustedPublishers([join(dir, 'missing.pub')])).rejects.toMatchObject({
      code: 'ERR_IO',
    });
  });
});
