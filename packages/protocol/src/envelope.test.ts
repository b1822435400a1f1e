import { createHash, randomBytes, scryptSync } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  deriveEnvelopeKey,
  type EnvelopePayload,
  envelopeAad,
  openEnvelope,
  type SealedEnvelope,
  sealEnvelope,
} from './envelope.js';
import { isSluiceError } from './errors.js';
import type { Manifest } from './manifest.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

const MANIFEST: Manifest = {
  version: 1,
  algorithm: 'AES-256-CBC',
  blobSize: 4112,
  smallSize: 1024,
  bigSize: 3088,
  chunkSize: 1024,
  chunks: ['a', 'b', 'c', 'd'].map(sha),
};
const RESOURCE = { folder: 'models', name: 'detector.onnx', version: 3 };
const AAD = envelopeAad(RESOURCE);
const EMAIL = 'Device.User@Example.test ';
const PASSWORD = 'correct horse battery staple';
const HARDWARE = 'a'.repeat(64);

function payload(): EnvelopePayload {
  return {
    resource: RESOURCE,
    manifest: MANIFEST,
    dataKey: randomBytes(32),
    small: randomBytes(1024),
  };
}

function expectBadEnvelope(fn: () => unknown): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(isSluiceError(caught, 'ERR_BAD_ENVELOPE'), String(caught)).toBe(true);
}

let key: Buffer;
beforeAll(async () => {
  key = await deriveEnvelopeKey(EMAIL, PASSWORD, HARDWARE);
});

describe('deriveEnvelopeKey', () => {
  it('is scrypt(NFC password, SHA-256 of the documented salt string), N=2^15 r=8 p=1', () => {
    const salt = createHash('sha256')
      .update(`sluice-envelope-v1\0device.user@example.test\0${HARDWARE}`)
      .digest();
    const expected = scryptSync(PASSWORD, salt, 32, {
      N: 32768,
      r: 8,
      p: 1,
      maxmem: 64 * 1024 * 1024,
    });
    expect(key.toString('hex')).toBe(expected.toString('hex'));
  });

  it('normalises the password to NFC and the email case, and depends on every input', async () => {
    const a = await deriveEnvelopeKey('x@y.z', 'caf\u00e9 au lait 1234', HARDWARE);
    expect(await deriveEnvelopeKey(' X@Y.Z', 'cafe\u0301 au lait 1234', HARDWARE)).toEqual(a);
    expect(await deriveEnvelopeKey('x@y.zz', 'caf\u00e9 au lait 1234', HARDWARE)).not.toEqual(a);
    expect(await deriveEnvelopeKey('x@y.z', 'caf\u00e9 au lait 1235', HARDWARE)).not.toEqual(a);
    expect(await deriveEnvelopeKey('x@y.z', 'caf\u00e9 au lait 1234', 'b'.repeat(64))).not.toEqual(
      a,
    );
  });

  it('refuses missing inputs', () => {
    expect(() => deriveEnvelopeKey('', PASSWORD, HARDWARE)).toThrow(RangeError);
    expect(() => deriveEnvelopeKey(EMAIL, PASSWORD, '')).toThrow(RangeError);
    expect(() => deriveEnvelopeKey(EMAIL, undefined as unknown as string, HARDWARE)).toThrow(
      TypeError,
    );
  });
});

describe('sealEnvelope / openEnvelope', () => {
  it('round-trips the payload, through the JSON text as well', () => {
    const p = payload();
    const env = sealEnvelope(key, p, AAD);
    expect(env).toMatchObject({ v: 1, kdf: { alg: 'scrypt', N: 32768, r: 8, p: 1 } });
    expect(Buffer.from(env.nonce, 'base64')).toHaveLength(12);
    expect(Buffer.from(env.tag, 'base64')).toHaveLength(16);
    // Without a cdnKey the big part is the API's own: the payload says so with null.
    expect(openEnvelope(key, env, AAD)).toEqual({ ...p, cdnKey: null });
    expect(openEnvelope(key, JSON.stringify(env), AAD)).toEqual({ ...p, cdnKey: null });
    expect(JSON.stringify(env)).not.toContain(p.dataKey.toString('base64'));
  });

  it('carries the cdnKey of a big part on the S3 CDN, authenticated with the rest', () => {
    const p = { ...payload(), cdnKey: 'models/detector.onnx/0f1e2d3c.big' };
    const env = sealEnvelope(key, p, AAD);
    expect(openEnvelope(key, env, AAD)).toEqual(p);
    expect(JSON.stringify(env)).not.toContain('detector.onnx/0f1e');
  });

  it('carries a null manifest and draws a fresh nonce every time', () => {
    const p = { ...payload(), manifest: null };
    const a = sealEnvelope(key, p, AAD);
    const b = sealEnvelope(key, p, AAD);
    expect(a.nonce).not.toBe(b.nonce);
    expect(a.ciphertext).not.toBe(b.ciphertext);
    expect(openEnvelope(key, b, AAD).manifest).toBeNull();
  });

  it('rejects a flipped bit in nonce, ciphertext or tag', () => {
    const env = sealEnvelope(key, payload(), AAD);
    for (const field of ['nonce', 'ciphertext', 'tag'] as const) {
      const bytes = Buffer.from(env[field], 'base64');
      for (const at of [0, bytes.length - 1]) {
        const copy = Buffer.from(bytes);
        copy[at] = (copy[at] ?? 0) ^ 0x01;
        expectBadEnvelope(() =>
          openEnvelope(key, { ...env, [field]: copy.toString('base64') }, AAD),
        );
      }
    }
  });

  it('rejects truncated, extended or malformed fields and other versions or kdf parameters', () => {
    const env = sealEnvelope(key, payload(), AAD);
    const ct = Buffer.from(env.ciphertext, 'base64');
    const variants: unknown[] = [
      { ...env, ciphertext: ct.subarray(0, ct.length - 1).toString('base64') },
      { ...env, ciphertext: Buffer.concat([ct, Buffer.alloc(1)]).toString('base64') },
      { ...env, tag: Buffer.from(env.tag, 'base64').subarray(0, 12).toString('base64') },
      { ...env, nonce: 'not base64!' },
      { ...env, v: 2 },
      { ...env, kdf: { ...env.kdf, N: 1024 } },
      { ...env, kdf: undefined },
      { ...env, ciphertext: undefined },
      null,
      [],
      '{not json',
    ];
    for (const v of variants) expectBadEnvelope(() => openEnvelope(key, v, AAD));
  });

  it('accepts canonical base64 only, even where a lenient decoder yields the right bytes', () => {
    const env = sealEnvelope(key, payload(), AAD);
    expect(env.ciphertext).toMatch(/[+/]/); // so the url-safe spelling differs
    const lenient: SealedEnvelope[] = [
      { ...env, nonce: `${env.nonce.slice(0, 4)} ${env.nonce.slice(4)}` },
      { ...env, nonce: `${env.nonce}\n` },
      { ...env, tag: env.tag.replace(/=+$/, '') },
      { ...env, ciphertext: env.ciphertext.replace(/\+/g, '-').replace(/\//g, '_') },
    ];
    for (const v of lenient) {
      // Node's decoder reads each of them as the sealed bytes…
      for (const f of ['nonce', 'tag', 'ciphertext'] as const) {
        expect(Buffer.from(v[f], 'base64').equals(Buffer.from(env[f], 'base64'))).toBe(true);
      }
      // …and the envelope still refuses them.
      expectBadEnvelope(() => openEnvelope(key, v, AAD));
    }
    expect(openEnvelope(key, env, AAD).small).toHaveLength(1024);
  });

  it('rejects a wrong password, a wrong device, another email and another resource', async () => {
    const env: SealedEnvelope = sealEnvelope(key, payload(), AAD);
    const wrongPassword = await deriveEnvelopeKey(EMAIL, `${PASSWORD}!`, HARDWARE);
    const wrongDevice = await deriveEnvelopeKey(EMAIL, PASSWORD, 'b'.repeat(64));
    const wrongEmail = await deriveEnvelopeKey('other@example.test', PASSWORD, HARDWARE);
    for (const k of [wrongPassword, wrongDevice, wrongEmail]) {
      expectBadEnvelope(() => openEnvelope(k, env, AAD));
    }
    for (const other of [
      { ...RESOURCE, version: 4 },
      { ...RESOURCE, name: 'other.onnx' },
      { ...RESOURCE, folder: 'other' },
    ]) {
      expectBadEnvelope(() => openEnvelope(key, env, envelopeAad(other)));
    }
  });

  it('validates what it seals', () => {
    expect(() => sealEnvelope(key, { ...payload(), dataKey: randomBytes(16) }, AAD)).toThrow();
    expect(() =>
      sealEnvelope(key, { ...payload(), manifest: { ...MANIFEST, chunks: [] } }, AAD),
    ).toThrow(/manifest/);
    expect(() => sealEnvelope(randomBytes(31), payload(), AAD)).toThrow();
  });
});
