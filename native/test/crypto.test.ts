import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { binding, MiB, patternBytes } from './helpers.js';

const b = binding();

// NIST SP 800-38A F.2.5 / F.2.6, CBC-AES256.
const nist = {
  key: Buffer.from('603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4', 'hex'),
  iv: Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex'),
  plain: Buffer.from(
    '6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51' +
      '30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710',
    'hex',
  ),
  cipher: Buffer.from(
    'f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d' +
      '39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b',
    'hex',
  ),
};

function nodeEncrypt(key: Buffer, iv: Buffer, data: Buffer): Buffer {
  const c = createCipheriv('aes-256-cbc', key, iv);
  return Buffer.concat([c.update(data), c.final()]);
}

function nodeRawDecrypt(key: Buffer, iv: Buffer, data: Buffer): Buffer {
  const d = createDecipheriv('aes-256-cbc', key, iv);
  d.setAutoPadding(false);
  return Buffer.concat([d.update(data), d.final()]);
}

async function runContext(
  mode: 'encrypt' | 'decrypt',
  key: Buffer,
  iv: Buffer,
  pieces: Buffer[],
): Promise<Buffer> {
  const ctx = b.createCipher(mode, key, iv);
  const out: Buffer[] = [];
  for (const p of pieces) out.push(await ctx.update(p));
  out.push(await ctx.final());
  return Buffer.concat(out);
}

function cutOdd(data: Buffer): Buffer[] {
  const sizes = [1, 15, 16, 17, 3, 31, 33, 4096 + 5, 65_537];
  const parts: Buffer[] = [];
  let off = 0;
  for (let i = 0; off < data.length; i++) {
    const n = sizes[i % sizes.length] ?? 1;
    parts.push(data.subarray(off, off + n));
    off += n;
  }
  return parts;
}

describe('opensslVersion', () => {
  it('reports the OpenSSL of the running node', () => {
    expect(b.opensslVersion).toContain(process.versions.openssl);
  });
});

describe('decryptChunk (raw CBC)', () => {
  it('matches the NIST SP 800-38A F.2.6 vector', async () => {
    for (const threads of [1, 2, 3, 4]) {
      const out = Buffer.alloc(64);
      const n = await b.decryptChunk(nist.cipher, nist.iv, nist.key, out, { threads });
      expect(n).toBe(64);
      expect(out.toString('hex')).toBe(nist.plain.toString('hex'));
    }
  });

  it('decrypts a chunk from its preceding ciphertext block (F.2.6 blocks 3-4)', async () => {
    const out = Buffer.alloc(32);
    await b.decryptChunk(nist.cipher.subarray(32), nist.cipher.subarray(16, 32), nist.key, out, {
      threads: 2,
    });
    expect(out.equals(nist.plain.subarray(32))).toBe(true);
  });

  it('splits odd block counts across threads exactly like node:crypto', async () => {
    const key = randomBytes(32);
    const iv = randomBytes(16);
    for (const blocks of [1, 3, 4097, 65_537, (3 * MiB) / 16 + 7]) {
      const ct = nodeEncrypt(key, iv, patternBytes(blocks * 16 - 1, blocks)).subarray(
        0,
        blocks * 16,
      );
      const expected = nodeRawDecrypt(key, iv, ct);
      for (const threads of [1, 2, 3, 5, 8]) {
        const out = Buffer.alloc(ct.length + 32, 0xee);
        const n = await b.decryptChunk(ct, iv, key, out, { threads });
        expect(n).toBe(ct.length);
        expect(out.subarray(0, n).equals(expected)).toBe(true);
        // Bytes past the ciphertext length are left alone.
        expect(out.subarray(n).every((x) => x === 0xee)).toBe(true);
      }
    }
  });

  it('decrypts an empty chunk to nothing', async () => {
    const out = Buffer.alloc(16, 7);
    expect(await b.decryptChunk(Buffer.alloc(0), nist.iv, nist.key, out, { threads: 2 })).toBe(0);
    expect(out.every((x) => x === 7)).toBe(true);
  });

  it('decrypts consecutive 8 MiB chunks of one stream independently', async () => {
    const key = randomBytes(32);
    const iv = randomBytes(16);
    const plain = patternBytes(3 * 8 * MiB + 100, 9);
    const ct = nodeEncrypt(key, iv, plain);
    const out = Buffer.alloc(ct.length);
    const chunk = 8 * MiB;
    await Promise.all(
      Array.from({ length: Math.ceil(ct.length / chunk) }, (_, i) => {
        const start = i * chunk;
        const prev = i === 0 ? iv : ct.subarray(start - 16, start);
        return b.decryptChunk(ct.subarray(start, start + chunk), prev, key, out.subarray(start), {
          threads: 2,
        });
      }),
    );
    const pad = out[out.length - 1] ?? 0;
    expect(out.subarray(0, out.length - pad).equals(plain)).toBe(true);
  });
});

describe('createCipher', () => {
  it('encrypts the NIST F.2.5 plaintext to the vector (then one padding block)', async () => {
    const out = await runContext('encrypt', nist.key, nist.iv, [nist.plain]);
    expect(out.length).toBe(80);
    expect(out.subarray(0, 64).toString('hex')).toBe(nist.cipher.toString('hex'));
    expect(out.equals(nodeEncrypt(nist.key, nist.iv, nist.plain))).toBe(true);
  });

  it('decrypts the NIST vector plus its padding block back to the F.2.6 plaintext', async () => {
    const sealed = nodeEncrypt(nist.key, nist.iv, nist.plain);
    const out = await runContext('decrypt', nist.key, nist.iv, [sealed]);
    expect(out.equals(nist.plain)).toBe(true);
  });

  it('matches node:crypto when fed odd-sized pieces', async () => {
    const key = randomBytes(32);
    const iv = randomBytes(16);
    for (const size of [0, 1, 15, 16, 17, 1000, 1 * MiB + 3]) {
      const plain = patternBytes(size, size + 1);
      const expected = nodeEncrypt(key, iv, plain);
      expect((await runContext('encrypt', key, iv, cutOdd(plain))).equals(expected)).toBe(true);
      expect((await runContext('decrypt', key, iv, cutOdd(expected))).equals(plain)).toBe(true);
    }
  });

  it('update returns whole blocks only, like Cipheriv', async () => {
    const ctx = b.createCipher('encrypt', nist.key, nist.iv);
    expect((await ctx.update(nist.plain.subarray(0, 15))).length).toBe(0);
    expect((await ctx.update(nist.plain.subarray(15, 33))).length).toBe(32);
    expect((await ctx.update(nist.plain.subarray(33))).length).toBe(32);
    expect((await ctx.final()).length).toBe(16);
  });

  it('serialises calls that are issued without awaiting', async () => {
    const key = randomBytes(32);
    const iv = randomBytes(16);
    const plain = patternBytes(4 * MiB + 11, 5);
    const ctx = b.createCipher('encrypt', key, iv);
    const pending = cutOdd(plain).map((p) => ctx.update(p));
    pending.push(ctx.final());
    const out = Buffer.concat(await Promise.all(pending));
    expect(out.equals(nodeEncrypt(key, iv, plain))).toBe(true);
  });

  it('rejects a wrong key at final() with ERR_BAD_DECRYPT', async () => {
    // Fixed pair, checked below to fail under node:crypto too.
    const key = createHash('sha256').update('right key').digest();
    const wrong = createHash('sha256').update('wrong key').digest();
    const iv = Buffer.alloc(16, 1);
    const sealed = nodeEncrypt(
      key,
      iv,
      Buffer.from('sluice fixed plaintext for the wrong-key test'),
    );
    const d = createDecipheriv('aes-256-cbc', wrong, iv);
    d.update(sealed);
    expect(() => d.final()).toThrow();
    const ctx = b.createCipher('decrypt', wrong, iv);
    await ctx.update(sealed);
    await expect(ctx.final()).rejects.toMatchObject({ code: 'ERR_BAD_DECRYPT' });
  });

  it('rejects truncated ciphertext at final() with ERR_BAD_DECRYPT', async () => {
    const ctx = b.createCipher('decrypt', nist.key, nist.iv);
    await ctx.update(nist.cipher.subarray(0, 40));
    await expect(ctx.final()).rejects.toMatchObject({ code: 'ERR_BAD_DECRYPT' });
  });

  it('rejects use after final()', async () => {
    const ctx = b.createCipher('encrypt', nist.key, nist.iv);
    await ctx.final();
    await expect(ctx.update(Buffer.alloc(1))).rejects.toMatchObject({ code: 'ERR_CRYPTO' });
    await expect(ctx.final()).rejects.toMatchObject({ code: 'ERR_CRYPTO' });
  });
});

describe('sha256', () => {
  it('matches node:crypto, including the FIPS 180-2 "abc" vector', async () => {
    expect((await b.sha256(Buffer.from('abc'))).toString('hex')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    for (const size of [0, 1, 55, 56, 64, 3 * MiB + 1]) {
      const data = patternBytes(size, size);
      const expected = createHash('sha256').update(data).digest();
      expect((await b.sha256(data)).equals(expected)).toBe(true);
    }
  });
});
