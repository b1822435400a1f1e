import { createCipheriv } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { hex } from '../test-helpers.js';
import { createDecryptStream, createEncryptStream, decryptChunk, sha256 } from './cryptoBackend.js';

// NIST SP 800-38A, F.2.5 CBC-AES256.Encrypt (and F.2.6 Decrypt: the same four blocks).
const KEY = Buffer.from('603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4', 'hex');
const IV = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
const PLAIN = [
  '6bc1bee22e409f96e93d7e117393172a',
  'ae2d8a571e03ac9c9eb76fac45af8e51',
  '30c81c46a35ce411e5fbc1191a0a52ef',
  'f69f2445df4f9b17ad2b417be66c3710',
];
const CIPHER = [
  'f58c4c04d6e5f1ba779eabfb5f7bfbd6',
  '9cfc4e967edb808d679f777bc6702c7d',
  '39f23369a9d9bacfa530e26304231461',
  'b2eb05e2c39be9fcda6c19078c6a9d1b',
];
const pt = Buffer.from(PLAIN.join(''), 'hex');
const ct = Buffer.from(CIPHER.join(''), 'hex');

describe('AES-256-CBC known answers (NIST SP 800-38A F.2.5/F.2.6)', () => {
  it('encrypt stream: the first four blocks are the NIST ciphertext, then one padding block', async () => {
    const out = await buffer(Readable.from([pt]).pipe(createEncryptStream(KEY, IV)));
    expect(out.length).toBe(80);
    expect(hex(out.subarray(0, 64))).toBe(CIPHER.join(''));
    // PKCS#7 block for a block-aligned plaintext: 16 × 0x10 encrypted after the last block.
    const pad = createCipheriv('aes-256-ecb', KEY, null).setAutoPadding(false);
    const x = Buffer.alloc(16, 0x10);
    for (let i = 0; i < 16; i++) x[i] = (x[i] ?? 0) ^ (ct[48 + i] ?? 0);
    expect(hex(out.subarray(64))).toBe(hex(pad.update(x)));
  });

  it('decryptChunk on the whole vector and on blocks 3-4 with block 2 as prevBlock', async () => {
    expect(hex(await decryptChunk(ct, IV, KEY))).toBe(PLAIN.join(''));
    const tail = await decryptChunk(ct.subarray(32), ct.subarray(16, 32), KEY);
    expect(hex(tail)).toBe(PLAIN.slice(2).join(''));
    const out = Buffer.alloc(100, 0xaa);
    const view = await decryptChunk(ct.subarray(16, 32), ct.subarray(0, 16), KEY, out);
    expect(hex(view)).toBe(PLAIN[1]);
    expect(view.buffer).toBe(out.buffer);
    expect(out[16]).toBe(0xaa);
  });

  it('decrypt stream inverts the NIST encryption in any chunking', async () => {
    const full = await buffer(Readable.from([pt]).pipe(createEncryptStream(KEY, IV)));
    const pieces = [full.subarray(0, 5), full.subarray(5, 37), full.subarray(37)];
    const back = await buffer(Readable.from(pieces).pipe(createDecryptStream(KEY, IV)));
    expect(hex(back)).toBe(PLAIN.join(''));
  });

  it('sha256 known answers (FIPS 180-2 "abc" and the empty string)', async () => {
    expect(hex(await sha256(Buffer.from('abc')))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(hex(await sha256(new Uint8Array(0)))).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });
});
