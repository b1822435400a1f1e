import { createHash, generateKeyPairSync } from 'node:crypto';
import {
  isSluiceError,
  type ManifestV1,
  type ManifestV2,
  validateManifest,
} from '@sluice/protocol';
import { describe, expect, it } from 'vitest';
import { manifestKeyCheck, toManifestV2, verifyDataKey, verifySmallPart } from './manifest.js';
import { publisherPublicKey, signManifest, verifyManifest } from './manifestSignature.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const SMALL = Buffer.alloc(1024, 3);
const RESOURCE = { folder: 'models', name: 'm.bin', version: 4 };

const layout: ManifestV1 = {
  version: 1,
  algorithm: 'AES-256-CBC',
  blobSize: 4112,
  smallSize: 1024,
  bigSize: 3088,
  chunkSize: 1024,
  chunks: ['a', 'b', 'c', 'd'].map(sha),
};

const DATA_KEY = Buffer.alloc(32, 5);
const unsigned = (): ManifestV2 =>
  toManifestV2(layout, { resource: RESOURCE, smallSha256: sha(SMALL), dataKey: DATA_KEY });
const publisher = generateKeyPairSync('ed25519').privateKey;
const other = generateKeyPairSync('ed25519').privateKey;
const KEY = publisherPublicKey(publisher);
const OTHER = publisherPublicKey(other);

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isSluiceError(e)) return e.code;
    throw e;
  }
  return 'no error';
}

describe('signManifest and verifyManifest', () => {
  it('a signed manifest verifies, survives JSON, and names its publisher', () => {
    const m = signManifest(unsigned(), publisher);
    expect(m.signature?.key).toBe(KEY);
    expect(Buffer.from(KEY, 'base64')).toHaveLength(32);
    const copy = validateManifest(JSON.parse(JSON.stringify(m)));
    expect(verifyManifest(copy, { resource: RESOURCE })).toEqual({ publisher: KEY });
    expect(verifyManifest(copy, { resource: RESOURCE, trustedPublishers: [OTHER, KEY] })).toEqual({
      publisher: KEY,
    });
    // Re-signing replaces the signature; Ed25519 is deterministic.
    expect(signManifest(m, publisher)).toEqual(m);
    expect(signManifest(m, other).signature?.key).toBe(OTHER);
  });

  it('any change to a signed field, or to the signature, is ERR_BAD_SIGNATURE with or without a trust list', () => {
    const m = signManifest(unsigned(), publisher);
    const sig = m.signature as NonNullable<ManifestV2['signature']>;
    const flipped = Buffer.from(sig.sig, 'base64');
    flipped[10] = (flipped[10] ?? 0) ^ 1;
    const altered: ManifestV2[] = [
      { ...m, small: sha('other small part') },
      { ...m, keyCheck: sha('another key') },
      { ...m, chunks: [...m.chunks.slice(0, 3), sha('x')] },
      { ...m, signature: { ...sig, sig: flipped.toString('base64') } },
      // Another key in the signature: the signature is not that key's.
      { ...m, signature: { ...sig, key: OTHER } },
    ];
    for (const bad of altered) {
      expect(code(() => verifyManifest(bad))).toBe('ERR_BAD_SIGNATURE');
      expect(code(() => verifyManifest(bad, { trustedPublishers: [KEY, OTHER] }))).toBe(
        'ERR_BAD_SIGNATURE',
      );
    }
    // A resource of another version, re-labelled after signing: the label check comes first.
    const relabelled = { ...m, resource: { ...RESOURCE, version: 5 } };
    expect(code(() => verifyManifest(relabelled))).toBe('ERR_BAD_SIGNATURE');
    expect(code(() => verifyManifest(relabelled, { resource: RESOURCE }))).toBe('ERR_BAD_MANIFEST');
  });

  it('a manifest naming another resource version is ERR_BAD_MANIFEST, even correctly signed', () => {
    const v3 = {
      resource: { ...RESOURCE, version: 3 },
      smallSha256: sha(SMALL),
      dataKey: DATA_KEY,
    };
    const m = signManifest(toManifestV2(layout, v3), publisher);
    for (const resource of [
      { ...RESOURCE, version: 3 + 1 },
      { ...RESOURCE, name: 'n.bin', version: 3 },
      { ...RESOURCE, folder: 'other', version: 3 },
    ]) {
      expect(code(() => verifyManifest(m, { resource }))).toBe('ERR_BAD_MANIFEST');
    }
    expect(verifyManifest(m, { resource: { ...RESOURCE, version: 3 } }).publisher).toBe(KEY);
  });

  it('with a trust list: another signer and unsigned manifests (v1 and v2) are ERR_UNTRUSTED_PUBLISHER', () => {
    const byOther = signManifest(unsigned(), other);
    expect(code(() => verifyManifest(byOther, { trustedPublishers: [KEY] }))).toBe(
      'ERR_UNTRUSTED_PUBLISHER',
    );
    expect(code(() => verifyManifest(unsigned(), { trustedPublishers: [KEY] }))).toBe(
      'ERR_UNTRUSTED_PUBLISHER',
    );
    expect(code(() => verifyManifest(layout, { trustedPublishers: [KEY] }))).toBe(
      'ERR_UNTRUSTED_PUBLISHER',
    );
    expect(code(() => verifyManifest(unsigned(), { trustedPublishers: [] }))).toBe(
      'ERR_UNTRUSTED_PUBLISHER',
    );
    // Without one they pass, reported as unsigned.
    expect(verifyManifest(unsigned(), { resource: RESOURCE })).toEqual({ publisher: null });
    expect(verifyManifest(layout, { resource: RESOURCE })).toEqual({ publisher: null });
  });

  it('refuses a key that is not an Ed25519 private key', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    expect(() => signManifest(unsigned(), ec)).toThrow(TypeError);
    expect(() => signManifest(unsigned(), generateKeyPairSync('ed25519').publicKey)).toThrow(
      TypeError,
    );
  });
});

describe('verifyDataKey', () => {
  it('accepts the key the manifest was made with, refuses any other with ERR_BAD_DECRYPT', () => {
    const m = unsigned();
    expect(m.keyCheck).toBe(manifestKeyCheck(DATA_KEY));
    verifyDataKey(m, DATA_KEY);
    const other = Buffer.from(DATA_KEY);
    other[31] = (other[31] ?? 0) ^ 1;
    expect(code(() => verifyDataKey(m, other))).toBe('ERR_BAD_DECRYPT');
    // v1 names no key; the check cannot refuse one.
    verifyDataKey(layout, other);
    expect(() => manifestKeyCheck(Buffer.alloc(16))).toThrow(RangeError);
  });
});

describe('verifySmallPart', () => {
  it('accepts the small part, refuses a changed byte or length with ERR_CHUNK_DIGEST', () => {
    const m = unsigned();
    verifySmallPart(m, SMALL);
    const changed = Buffer.from(SMALL);
    changed[512] = (changed[512] ?? 0) ^ 0x01;
    expect(code(() => verifySmallPart(m, changed))).toBe('ERR_CHUNK_DIGEST');
    expect(() => verifySmallPart(m, changed)).toThrow(/^small part: SHA-256 /);
    expect(() => verifySmallPart(m, SMALL.subarray(1))).toThrow(
      'small part: expected 1024 bytes, got 1023',
    );
  });

  it('a v1 manifest checks only the length (it has no digest of the small part)', () => {
    verifySmallPart(layout, Buffer.alloc(1024, 9));
    expect(code(() => verifySmallPart(layout, Buffer.alloc(1000)))).toBe('ERR_CHUNK_DIGEST');
  });
});
