import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isSluiceError } from './errors.js';
import { type ManifestV2, validateManifest } from './manifest.js';
import { canonicalManifestJson, manifestSignedBytes } from './manifestSigning.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function v2(): ManifestV2 {
  return {
    version: 2,
    algorithm: 'AES-256-CBC',
    resource: { folder: 'models', name: 'detector.onnx', version: 3 },
    blobSize: 4112,
    smallSize: 1024,
    bigSize: 3088,
    chunkSize: 1024,
    small: sha('small'),
    keyCheck: sha('key'),
    chunks: ['a', 'b', 'c', 'd'].map(sha),
  };
}

const SIGNATURE = {
  alg: 'Ed25519',
  key: Buffer.alloc(32, 7).toString('base64'),
  sig: Buffer.alloc(64, 9).toString('base64'),
} as const;

function expectBad(value: unknown, pattern: RegExp): void {
  let caught: unknown;
  try {
    validateManifest(value);
  } catch (e) {
    caught = e;
  }
  expect(isSluiceError(caught, 'ERR_BAD_MANIFEST'), String(caught)).toBe(true);
  expect((caught as Error).message).toMatch(pattern);
}

describe('validateManifest, version 2', () => {
  it('accepts an unsigned and a signed manifest and returns clean copies in the documented order', () => {
    const m = v2();
    expect(validateManifest(JSON.parse(JSON.stringify(m)))).toEqual(m);
    const signed = validateManifest({ signature: { ...SIGNATURE }, ...v2() });
    expect(signed).toEqual({ ...v2(), signature: SIGNATURE });
    expect(Object.keys(signed)).toEqual([
      'version',
      'algorithm',
      'resource',
      'blobSize',
      'smallSize',
      'bigSize',
      'chunkSize',
      'small',
      'keyCheck',
      'chunks',
      'signature',
    ]);
    expect((signed as ManifestV2).resource).not.toBe(m.resource);
  });

  it('still accepts version 1 and refuses v2-only fields in it', () => {
    const { resource: _r, small: _s, keyCheck: _k, ...rest } = v2();
    expect(validateManifest({ ...rest, version: 1 }).version).toBe(1);
    expectBad({ ...rest, version: 1, small: sha('x') }, /unknown field\(s\) small/);
    expectBad({ ...v2(), version: 3 }, /version must be 1 or 2, got 3/);
    expectBad({ ...v2(), version: '2' }, /version must be 1 or 2, got "2"/);
  });

  it('refuses unknown fields at the top, in resource and in signature', () => {
    expectBad({ ...v2(), publisher: 'me' }, /unknown field\(s\) publisher$/);
    expectBad(
      { ...v2(), resource: { ...v2().resource, id: 1 } },
      /unknown field\(s\) id in resource/,
    );
    expectBad(
      { ...v2(), signature: { ...SIGNATURE, kid: 'x' } },
      /unknown field\(s\) kid in signature/,
    );
    expectBad({ ...v2(), __proto__x: 1 }, /unknown field/);
  });

  it('refuses a bad resource', () => {
    expectBad({ ...v2(), resource: undefined }, /resource must be an object, got undefined/);
    expectBad({ ...v2(), resource: [] }, /resource must be an object, got an array/);
    expectBad(
      { ...v2(), resource: { ...v2().resource, folder: '../x' } },
      /resource.folder is not a resource name/,
    );
    expectBad(
      { ...v2(), resource: { ...v2().resource, name: '' } },
      /resource.name is not a resource name/,
    );
    for (const version of [0, -1, 1.5, '3', null]) {
      expectBad(
        { ...v2(), resource: { ...v2().resource, version } },
        /resource.version must be a positive safe integer/,
      );
    }
  });

  it('refuses a bad small digest or chunk digest', () => {
    expectBad({ ...v2(), small: undefined }, /small must be 64 lower-case hex digits/);
    expectBad({ ...v2(), small: sha('x').toUpperCase() }, /small must be 64 lower-case hex digits/);
    expectBad({ ...v2(), small: sha('x').slice(1) }, /small must be 64 lower-case hex digits/);
    expectBad({ ...v2(), keyCheck: undefined }, /keyCheck must be 64 lower-case hex digits \(HMAC/);
    expectBad({ ...v2(), keyCheck: 'ab' }, /keyCheck must be 64 lower-case hex digits/);
    const chunks = v2().chunks;
    chunks[1] = 'z'.repeat(64);
    expectBad({ ...v2(), chunks }, /chunks\[1\] must be 64 lower-case hex digits/);
    expectBad({ ...v2(), bigSize: 3072 }, /smallSize 1024 \+ bigSize 3072 != blobSize 4112/);
  });

  it('refuses a signature that is not Ed25519 or not canonical base64 of the right length', () => {
    expectBad({ ...v2(), signature: null }, /signature must be an object, got null/);
    expectBad(
      { ...v2(), signature: { ...SIGNATURE, alg: 'EdDSA' } },
      /signature.alg must be "Ed25519"/,
    );
    const key = SIGNATURE.key;
    for (const bad of [
      key.slice(0, -1), // padding missing
      Buffer.alloc(31, 7).toString('base64'), // 31 bytes
      Buffer.alloc(33, 7).toString('base64'),
      key.replace(/[A-Za-z0-9]/, '-'), // base64url alphabet
      ` ${key}`,
      `${key.slice(0, 42)}B=`, // non-zero trailing bits: not the canonical spelling
      42,
    ]) {
      expectBad(
        { ...v2(), signature: { ...SIGNATURE, key: bad } },
        /signature.key must be 32 bytes in standard base64/,
      );
    }
    expectBad(
      { ...v2(), signature: { ...SIGNATURE, sig: Buffer.alloc(63).toString('base64') } },
      /signature.sig must be 64 bytes/,
    );
    expectBad(
      { ...v2(), signature: { ...SIGNATURE, sig: Buffer.alloc(64).toString('hex') } },
      /signature.sig must be 64 bytes/,
    );
  });
});

describe('manifestSignedBytes', () => {
  it('is the context line and the canonical JSON without signature, whatever the field order', () => {
    const m = v2();
    const text = manifestSignedBytes(m).toString('utf8');
    expect(
      text.startsWith(
        'sluice-manifest-v2\n{"version":2,"algorithm":"AES-256-CBC","resource":{"folder":"models","name":"detector.onnx","version":3},"blobSize":4112,',
      ),
    ).toBe(true);
    expect(text.slice(text.indexOf('\n') + 1)).not.toMatch(/\s/);
    const { chunks, small, ...rest } = m;
    const shuffled = {
      chunks,
      small,
      signature: SIGNATURE,
      ...rest,
      resource: { version: 3, name: 'detector.onnx', folder: 'models' },
    };
    expect(canonicalManifestJson(shuffled as ManifestV2)).toBe(canonicalManifestJson(m));
    expect(canonicalManifestJson({ ...m, signature: SIGNATURE })).toBe(canonicalManifestJson(m));
  });

  it('verifies with node:crypto Ed25519 once signed, and not after any field changes', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const m = v2();
    const sig = sign(null, manifestSignedBytes(m), privateKey);
    expect(verify(null, manifestSignedBytes(m), publicKey, sig)).toBe(true);
    const other = { ...m, resource: { ...m.resource, version: 4 } };
    expect(verify(null, manifestSignedBytes(other), publicKey, sig)).toBe(false);
  });
});
