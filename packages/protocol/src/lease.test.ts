import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isSluiceError } from './errors.js';
import {
  LEASE_DOMAIN,
  type Lease,
  leaseManifestDigest,
  leaseSigningInput,
  parseLease,
  type SignedLease,
  verifyLease,
} from './lease.js';

const keyPair = () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const x = publicKey.export({ format: 'jwk' }).x ?? '';
  return { privateKey, jwk: { kid: `k-${x.slice(0, 8)}`, x } };
};

const LEASE: Lease = {
  v: 1,
  id: '0b6a3f7e-3f43-4d3a-9a43-2f0d8c5a1e11',
  userId: 'u1',
  email: 'drone@example.test',
  hardware: 'ab'.repeat(32),
  folder: 'models',
  name: 'm.bin',
  version: 3,
  manifestDigest: 'cd'.repeat(32),
  issuedAt: '2026-12-01T10:00:00.000Z',
  notAfter: '2026-12-08T10:00:00.000Z',
};

function signed(
  lease: unknown,
  k = keyPair(),
  input = leaseSigningInput,
): SignedLease & { k: typeof k } {
  const payload = Buffer.from(JSON.stringify(lease));
  const signature = sign(null, input(payload), k.privateKey).toString('base64');
  return { kid: k.jwk.kid, payload: payload.toString('base64'), signature, k };
}

const rejects = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    expect(isSluiceError(e, 'ERR_LEASE_INVALID'), String(e)).toBe(true);
    return;
  }
  throw new Error('accepted');
};

describe('offline lease signatures', () => {
  it('verifies a lease signed over the domain-separated input, and returns its fields', () => {
    const s = signed(LEASE);
    expect(verifyLease(s, s.k.jwk)).toEqual(LEASE);
    expect(leaseSigningInput(Buffer.from('x')).toString()).toBe(`${LEASE_DOMAIN}x`);
  });

  it('refuses an altered payload, another key, another kid, and a signature over the bare payload', () => {
    const s = signed(LEASE);
    const later = Buffer.from(JSON.stringify({ ...LEASE, notAfter: '2099-01-01T00:00:00.000Z' }));
    rejects(() => verifyLease({ ...s, payload: later.toString('base64') }, s.k.jwk));
    const other = keyPair();
    rejects(() => verifyLease(s, { ...other.jwk, kid: s.kid }));
    rejects(() => verifyLease(s, { ...s.k.jwk, kid: 'another' }));
    // Without the domain prefix (what a JWT-style signature over the bytes would be): refused.
    const bare = signed(LEASE, keyPair(), (p) => p);
    rejects(() => verifyLease(bare, bare.k.jwk));
    rejects(() => verifyLease({ ...s, signature: s.signature.slice(4) }, s.k.jwk));
  });

  it('refuses malformed leases even when signed', () => {
    for (const bad of [
      { ...LEASE, v: 2 },
      { ...LEASE, version: 0 },
      { ...LEASE, notAfter: 'next week' },
      { ...LEASE, hardware: '' },
      'not an object',
    ]) {
      const s = signed(bad);
      rejects(() => verifyLease(s, s.k.jwk));
    }
    rejects(() => parseLease({ kid: 'k', payload: '%%%', signature: '' }));
  });

  it('digests a manifest by its validated JSON: any field changes it', () => {
    const sha = (t: string) => createHash('sha256').update(t).digest('hex');
    const m = {
      version: 2 as const,
      algorithm: 'AES-256-CBC' as const,
      resource: { folder: 'models', name: 'detector.onnx', version: 3 },
      blobSize: 4112,
      smallSize: 1024,
      bigSize: 3088,
      chunkSize: 1024,
      small: sha('small'),
      keyCheck: sha('key'),
      chunks: ['a', 'b', 'c', 'd'].map(sha),
    };
    const d = leaseManifestDigest(m);
    expect(d).toMatch(/^[0-9a-f]{64}$/);
    expect(leaseManifestDigest({ ...m })).toBe(d);
    expect(leaseManifestDigest({ ...m, small: sha('other') })).not.toBe(d);
    expect(leaseManifestDigest({ ...m, resource: { ...m.resource, version: 4 } })).not.toBe(d);
  });
});
