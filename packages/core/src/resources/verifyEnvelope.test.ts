import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import type { ManifestV1 } from '@sluice/protocol';
import { describe, expect, it } from 'vitest';
import { toManifestV2 } from '../format/manifest.js';
import { publisherPublicKey, signManifest } from '../format/manifestSignature.js';
import { verifyEnvelope } from './verifyEnvelope.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const small = randomBytes(1024);
const dataKey = randomBytes(32);
const resource = { folder: 'models', name: 'm.bin', version: 2 };
const asked = { folder: 'models', name: 'm.bin' };
const layout: ManifestV1 = {
  version: 1,
  algorithm: 'AES-256-CBC',
  blobSize: 4112,
  smallSize: 1024,
  bigSize: 3088,
  chunkSize: 1024,
  chunks: ['a', 'b', 'c', 'd'].map(sha),
};
const key = generateKeyPairSync('ed25519').privateKey;
const signed = signManifest(
  toManifestV2(layout, { resource, smallSha256: sha(small), dataKey }),
  key,
);

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

describe('verifyEnvelope', () => {
  it('accepts the resource asked for and names its publisher', () => {
    const payload = { resource, manifest: signed, small, dataKey };
    expect(verifyEnvelope(asked, resource, payload, [publisherPublicKey(key)])).toEqual({
      publisher: publisherPublicKey(key),
    });
  });

  it('an envelope of another resource than the one asked for is ERR_BAD_ENVELOPE', () => {
    const other = { ...resource, name: 'other.bin' };
    const payload = { resource: other, manifest: signed, small, dataKey };
    expect(code(() => verifyEnvelope(asked, other, payload, undefined))).toBe('ERR_BAD_ENVELOPE');
  });

  it('no manifest: unsigned, refused only with a trust list', () => {
    const payload = { resource, manifest: null, small, dataKey };
    expect(verifyEnvelope(asked, resource, payload, undefined)).toEqual({ publisher: null });
    expect(code(() => verifyEnvelope(asked, resource, payload, []))).toBe(
      'ERR_UNTRUSTED_PUBLISHER',
    );
  });

  it('the small part and the data key must be the manifest’s', () => {
    const changed = Buffer.from(small);
    changed[0] = (changed[0] ?? 0) ^ 1;
    const badSmall = { resource, manifest: signed, small: changed, dataKey };
    expect(code(() => verifyEnvelope(asked, resource, badSmall, undefined))).toBe(
      'ERR_CHUNK_DIGEST',
    );
    const badKey = { resource, manifest: signed, small, dataKey: randomBytes(32) };
    expect(code(() => verifyEnvelope(asked, resource, badKey, undefined))).toBe('ERR_BAD_DECRYPT');
  });
});
