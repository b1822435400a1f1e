// Hostile-input suite (docs/SECURITY.md): the transfer level — Range headers with overlong
// numbers, uploads the client abandons, and clients that send or read too slowly — against the
// real server on loopback.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { removeDir } from '../test-helpers.js';
import {
  expectHealthy,
  fieldsOf,
  formOf,
  type Hostile,
  type Sealed,
  sealRandom,
  startHostile,
  upload,
} from './test-hostile.js';

let h: Hostile;
let sealed: Sealed;
beforeAll(async () => {
  h = await startHostile();
  sealed = await sealRandom(40_000);
  expect((await upload(h, 'models', formOf(fieldsOf(sealed, 'r.bin')))).status).toBe(201);
});
afterAll(async () => {
  await h.close();
  await removeDir(h.dataDir);
});
afterEach(async () => {
  await expectHealthy(h);
});

/** `GET …/big` of the uploaded resource with `range`: status, Content-Range and the bytes. */
async function ranged(range: string) {
  const res = await fetch(`${h.url}/resources/models/r.bin/big`, {
    headers: { authorization: `Bearer ${h.tokens.Validator}`, range },
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  return { status: res.status, contentRange: res.headers.get('content-range'), bytes };
}

describe('Range headers with long numbers (RFC 9110 §14.1.2)', () => {
  it('a last-byte-pos of more than 16 digits means "to the end" (206); an overlong first-byte-pos is 416', async () => {
    const big = sealed.big;
    const size = big.length;
    const huge = '9'.repeat(20);
    const toEnd = await ranged(`bytes=5-${huge}`);
    expect({ status: toEnd.status, range: toEnd.contentRange }).toEqual({
      status: 206,
      range: `bytes 5-${size - 1}/${size}`,
    });
    expect(toEnd.bytes.equals(big.subarray(5))).toBe(true);
    // Leading zeros are digits too: 20 of them still name byte 9.
    const padded = await ranged(`bytes=0-${'9'.padStart(20, '0')}`);
    expect({ status: padded.status, range: padded.contentRange }).toEqual({
      status: 206,
      range: `bytes 0-9/${size}`,
    });
    expect(padded.bytes.equals(big.subarray(0, 10))).toBe(true);
    // A suffix longer than the part is the whole part.
    const suffix = await ranged(`bytes=-${huge}`);
    expect({ status: suffix.status, range: suffix.contentRange }).toEqual({
      status: 206,
      range: `bytes 0-${size - 1}/${size}`,
    });
    for (const header of [`bytes=${huge}-`, `bytes=${huge}-${huge}`]) {
      const r = await ranged(header);
      expect({ status: r.status, range: r.contentRange }, header).toEqual({
        status: 416,
        range: `bytes */${size}`,
      });
    }
  });
});
