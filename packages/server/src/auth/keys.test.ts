import { chmod, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { jwtVerify, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '../test-helpers.js';
import { loadOrCreateSigningKeys, SIGNING_KEY_FILE } from './keys.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map(removeDir));
});

describe('signing keys', () => {
  it('creates an Ed25519 key 0600 on first start and reloads the same key afterwards', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const first = await loadOrCreateSigningKeys(dir);
    expect((await stat(join(dir, SIGNING_KEY_FILE))).mode & 0o777).toBe(0o600);
    const second = await loadOrCreateSigningKeys(dir);
    expect(second.kid).toBe(first.kid);
    const token = await new SignJWT({ a: 1 })
      .setProtectedHeader({ alg: 'EdDSA' })
      .sign(first.privateKey);
    await expect(jwtVerify(token, second.publicKey)).resolves.toBeDefined();
  });

  it('publishes only the public key, with kid, alg and use', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const keys = await loadOrCreateSigningKeys(dir);
    expect(keys.jwks.keys).toHaveLength(1);
    const [jwk] = keys.jwks.keys;
    expect(jwk).toMatchObject({
      kty: 'OKP',
      crv: 'Ed25519',
      kid: keys.kid,
      alg: 'EdDSA',
      use: 'sig',
    });
    expect(jwk).not.toHaveProperty('d');
    const file = JSON.parse(await readFile(join(dir, SIGNING_KEY_FILE), 'utf8'));
    expect(JSON.stringify(keys.jwks)).not.toContain(file.privateJwk.d);
  });

  it('two concurrent first starts end up with one key', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => loadOrCreateSigningKeys(dir)));
    expect(new Set([a?.kid, b?.kid, c?.kid]).size).toBe(1);
  });

  it('refuses a key file that group or others can read', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    await loadOrCreateSigningKeys(dir);
    await chmod(join(dir, SIGNING_KEY_FILE), 0o644);
    await expect(loadOrCreateSigningKeys(dir)).rejects.toThrow(/chmod 600/);
  });
});
