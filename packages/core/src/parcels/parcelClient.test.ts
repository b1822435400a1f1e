import { createHash, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSluiceError } from '@sluice/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParcelClient } from './parcelClient.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-parcel-client-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const baseUrl = 'http://127.0.0.1:1';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isSluiceError(e) ? e.code : `not a SluiceError: ${String(e)}`;
  }
  return undefined;
}

describe('ParcelClient keys', () => {
  it('derives the documented public key hex and address from the key', () => {
    const pem = ParcelClient.generateKey();
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const client = new ParcelClient({ baseUrl, privateKey: pem });
    const jwk = createPublicKey(pem).export({ format: 'jwk' });
    const point = Buffer.concat([
      Buffer.from([4]),
      Buffer.from(jwk.x ?? '', 'base64url'),
      Buffer.from(jwk.y ?? '', 'base64url'),
    ]);
    expect(client.publicKeyHex).toBe(point.toString('hex'));
    expect(client.publicKeyHex).toMatch(/^04[0-9a-f]{128}$/);
    expect(client.address).toBe(
      createHash('sha256').update(point).digest().subarray(0, 20).toString('hex'),
    );
    const hash = createHash('sha256').update('content').digest();
    expect(client.parcelId(hash.toString('hex'))).toBe(
      createHash('sha256')
        .update(Buffer.concat([Buffer.from(client.address, 'hex'), hash]))
        .digest('hex'),
    );
    // A signature made the way the client signs verifies against the published point.
    const sig = sign('sha256', Buffer.from('token'), { key: pem, dsaEncoding: 'ieee-p1363' });
    expect(sig.length).toBe(64);
    expect(
      verify(
        'sha256',
        Buffer.from('token'),
        { key: createPublicKey(pem), dsaEncoding: 'ieee-p1363' },
        sig,
      ),
    ).toBe(true);
  });

  it('writes a key file 0600, refuses to overwrite it, and loads it', async () => {
    const path = join(dir, 'parcel.pem');
    const address = await ParcelClient.writeKeyFile(path);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const before = await readFile(path, 'utf8');
    await expect(ParcelClient.writeKeyFile(path)).rejects.toMatchObject({ code: 'ERR_IO' });
    expect(await readFile(path, 'utf8')).toBe(before);
    expect(new ParcelClient({ baseUrl, keyFile: path }).address).toBe(address);
  });

  it('refuses a key file others may read, a missing one, and keys that are not P-256', async () => {
    const open = join(dir, 'open.pem');
    await writeFile(open, ParcelClient.generateKey(), { mode: 0o600 });
    await chmod(open, 0o644);
    expect(codeOf(() => new ParcelClient({ baseUrl, keyFile: open }))).toBe('ERR_INSECURE_FILE');
    expect(codeOf(() => new ParcelClient({ baseUrl, keyFile: join(dir, 'missing.pem') }))).toBe(
      'ERR_IO',
    );
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    const ed = generateKeyPairSync('ed25519').privateKey;
    for (const privateKey of [p384, ed, 'not a pem']) {
      expect(codeOf(() => new ParcelClient({ baseUrl, privateKey }))).toBe('ERR_INVALID_ARG');
    }
    expect(codeOf(() => new ParcelClient({ baseUrl }))).toBe('ERR_INVALID_ARG');
  });

  it('refuses malformed parcel ids before any request', async () => {
    const client = new ParcelClient({ baseUrl, privateKey: ParcelClient.generateKey() });
    for (const id of ['', 'AB'.repeat(32), '../etc.js', 'ab'.repeat(31)]) {
      await expect(client.get(id, { to: 'buffer' })).rejects.toMatchObject({
        code: 'ERR_INVALID_ARG',
      });
      await expect(client.remove(id)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
      await expect(client.inspect(id)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    }
  });
});
