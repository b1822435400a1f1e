// Parses the test vectors out of docs/FORMAT.md and checks them against the implementation,
// so the document and the code cannot drift apart.

import { createHash, createPrivateKey, hkdfSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  canonicalManifestJson,
  chunkLength,
  MANIFEST_KEY_CHECK_LABEL,
  type ManifestV2,
  manifestSignedBytes,
  validateManifest,
} from '@sluice/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { hex, openssl, tempDir } from '../test-helpers.js';
import { BlobChunkDecryptor, chunkBlobOffset } from './blobChunkDecryptor.js';
import { manifestKeyCheck, toManifestV2, verifyChunk } from './manifest.js';
import { publisherPublicKey, signManifest, verifyManifest } from './manifestSignature.js';
import { sealAndSplit } from './sealAndSplit.js';
import { blobSize, openBuffer, openFile, sealBuffer, sealFile } from './sealedBlob.js';
import { describeSealedFile, SEALED_FILE_MAC_INFO } from './sealedFileManifest.js';
import { smallPartSize } from './smallPartSize.js';

const here = dirname(fileURLToPath(import.meta.url));
const doc = await readFile(resolve(here, '..', '..', '..', '..', 'docs', 'FORMAT.md'), 'utf8');

function fenced(info: string): string {
  const m = doc.match(new RegExp(`\`\`\`${info}\\n([\\s\\S]*?)\`\`\``));
  if (!m?.[1]) throw new Error(`FORMAT.md has no \`\`\`${info} block`);
  return m[1];
}

type Fields = Record<string, string>;
type VectorLine = { kind: string; fields: Fields };
/** The `kind key=value …` lines of a vectors block (a bare word is the field `value`). */
const vectorLines = (info: string): VectorLine[] =>
  fenced(info)
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [kind, ...rest] = l.trim().split(/\s+/);
      const fields: Fields = {};
      for (const r of rest) {
        const eq = r.indexOf('=');
        if (eq > 0) fields[r.slice(0, eq)] = r.slice(eq + 1);
        else fields.value = r;
      }
      return { kind: kind as string, fields };
    });
const lines = vectorLines('vectors');

function one(kind: string, from: VectorLine[] = lines): Fields {
  const found = from.filter((l) => l.kind === kind);
  if (found.length !== 1)
    throw new Error(`expected one "${kind}" line in FORMAT.md, found ${found.length}`);
  return (found[0] as { fields: Fields }).fields;
}
const num = (f: Fields, k: string) => {
  const v = f[k];
  if (v === undefined || !/^\d+$/.test(v))
    throw new Error(`vector field ${k} missing or not a number`);
  return Number(v);
};
const str = (f: Fields, k: string) => {
  const v = f[k];
  if (v === undefined) throw new Error(`vector field ${k} missing`);
  return v;
};
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const KEY = Buffer.from(str(one('key'), 'value'), 'hex');
const IV = Buffer.from(str(one('iv'), 'value'), 'hex');
const seals = lines.filter((l) => l.kind === 'seal').map((l) => l.fields);
const splits = lines.filter((l) => l.kind === 'split').map((l) => l.fields);

let dir: string;
beforeAll(async () => {
  dir = await tempDir();
});

describe('docs/FORMAT.md vectors', () => {
  it('has the expected vectors', () => {
    expect(KEY.length).toBe(32);
    expect(IV.length).toBe(16);
    expect(seals.map((s) => num(s, 'n'))).toEqual([0, 1, 15, 16, 17, 31, 32, 33]);
    expect(splits.length).toBeGreaterThanOrEqual(5);
  });

  it.each(seals.map((s) => [num(s, 'n'), s] as const))('sealed blob of %i bytes', async (n, v) => {
    const plain = Buffer.from(Array.from({ length: n }, (_, i) => i & 0xff));
    expect(sha(plain)).toBe(str(v, 'plain-sha256'));
    const blob = sealBuffer(plain, KEY, IV);
    expect(hex(blob)).toBe(str(v, 'blob'));
    expect(sha(blob)).toBe(str(v, 'blob-sha256'));
    expect(blob.length).toBe(blobSize(n));
    expect(openBuffer(Buffer.from(str(v, 'blob'), 'hex'), KEY).equals(plain)).toBe(true);
    // Through the file path of the active backend, and back through the documented openssl command.
    const src = join(dir, `v${n}`);
    await writeFile(src, plain);
    await sealFile(src, `${src}.blob`, KEY, { iv: IV });
    const onDisk = await readFile(`${src}.blob`);
    expect(hex(onDisk)).toBe(str(v, 'blob'));
    const ivHex = hex(onDisk.subarray(0, 16));
    expect(
      openssl(
        ['enc', '-d', '-aes-256-cbc', '-K', hex(KEY), '-iv', ivHex],
        onDisk.subarray(16),
      ).equals(plain),
    ).toBe(true);
    await openFile(`${src}.blob`, `${src}.out`, KEY);
    expect((await readFile(`${src}.out`)).equals(plain)).toBe(true);
  });

  it.each(splits.map((s) => [num(s, 'blobSize'), num(s, 'smallSizeKB'), num(s, 'smallSize')]))(
    'split rule: blobSize %i, smallSizeKB %i → smallSize %i',
    (blob, kb, small) => {
      expect(smallPartSize(blob, kb)).toBe(small);
    },
  );

  it('the manifest vector, and the chunk-by-chunk table of section 5', async () => {
    const input = one('manifest-input');
    const size = num(input, 'plainSize');
    const modulus = num(input, 'modulus');
    const plain = Buffer.from(Array.from({ length: size }, (_, i) => i % modulus));
    expect(sha(plain)).toBe(str(input, 'plain-sha256'));
    const src = join(dir, 'manifest-input');
    await writeFile(src, plain);
    const r = await sealAndSplit(src, {
      dir,
      key: KEY,
      iv: IV,
      smallSizeKB: num(input, 'smallSizeKB'),
      chunkSize: num(input, 'chunkSize'),
    });
    const small = await readFile(r.smallPath);
    const big = await readFile(r.bigPath);
    expect(sha(Buffer.concat([small, big]))).toBe(str(input, 'blob-sha256'));
    expect(sha(small)).toBe(str(input, 'small-sha256'));
    expect(sha(big)).toBe(str(input, 'big-sha256'));
    const documented = validateManifest(JSON.parse(fenced('json manifest-vector')));
    expect(r.manifest).toEqual(documented);

    // Section 5's table: what each in-order push decrypts.
    const num_ = (s: string) => Number(s.replace(/\s/g, ''));
    const rows = [
      ...doc.matchAll(
        /^\|\s*(small|chunk \d)\s*\|\s*\[([\d ]+), ([\d ]+)\)\s*\|\s*\[([\d ]+), ([\d ]+)\)[^|]*\|\s*(?:[\d, ]+→ \[([\d ]+), ([\d ]+)\)|—)/gm,
      ),
    ].map((m) => ({
      lo: num_(m[2] as string),
      hi: num_(m[3] as string),
      inside: [num_(m[4] as string), num_(m[5] as string)] as const,
      edge: m[6] === undefined ? undefined : ([num_(m[6]), num_(m[7] as string)] as const),
    }));
    expect(rows).toHaveLength(1 + documented.chunks.length);
    const pieces: [number, Buffer][] = [[0, small]];
    documented.chunks.forEach((_, k) => {
      const data = big.subarray(
        k * documented.chunkSize,
        k * documented.chunkSize + chunkLength(documented, k),
      );
      verifyChunk(documented, k, data);
      pieces.push([chunkBlobOffset(documented, k), data]);
    });
    const d = new BlobChunkDecryptor(documented.blobSize, KEY);
    const out = Buffer.alloc(size);
    for (const [i, [offset, data]] of pieces.entries()) {
      const row = rows[i];
      expect([offset, offset + data.length]).toEqual([row?.lo, row?.hi]);
      const got = (await d.push(offset, data)).map((p) => {
        p.data.copy(out, p.offset);
        return [p.offset, p.offset + p.data.length];
      });
      const prevEdge = rows[i - 1]?.edge;
      const want = [...(prevEdge ? [prevEdge] : []), row?.inside].sort(
        (a, b) => (a?.[0] ?? 0) - (b?.[0] ?? 0),
      );
      const merged = got
        .sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0))
        .reduce<number[][]>((acc, [a, b]) => {
          const last = acc[acc.length - 1];
          if (last && last[1] === a) last[1] = b as number;
          else acc.push([a as number, b as number]);
          return acc;
        }, []);
      // Each documented range is covered exactly by what that push emitted.
      expect(merged.flat()).toEqual(
        want
          .reduce<number[][]>((acc, r) => {
            const last = acc[acc.length - 1];
            if (last && r && last[1] === r[0]) last[1] = r[1];
            else if (r) acc.push([r[0], r[1]]);
            return acc;
          }, [])
          .flat(),
      );
    }
    expect(d.complete).toBe(true);
    expect(out.equals(plain)).toBe(true);
  });
});

describe('docs/FORMAT.md v2 manifest vector', () => {
  const v2 = vectorLines('vectors-v2');
  const seed = Buffer.from(str(one('seed', v2), 'value'), 'hex');
  // PKCS#8 of an Ed25519 seed: the fixed DER prefix FORMAT.md gives, then the seed.
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const privateKey = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  const documented = validateManifest(JSON.parse(fenced('json manifest-v2-vector'))) as ManifestV2;
  const canonical = fenced('text manifest-v2-canonical').trim();

  it('the documented manifest is v2, its small digest is the small part of the v1 vector', () => {
    expect(documented.version).toBe(2);
    expect(documented.small).toBe(str(one('manifest-input'), 'small-sha256'));
    const v1 = validateManifest(JSON.parse(fenced('json manifest-vector')));
    const { signature: _s, ...unsigned } = documented;
    const parts = { resource: documented.resource, smallSha256: documented.small, dataKey: KEY };
    expect(toManifestV2(v1, parts)).toEqual(unsigned);
  });

  it('keyCheck is the HMAC of the label under the data key, as openssl dgst computes it', () => {
    const v = one('key-check', v2);
    const label = str(v, 'label').replaceAll('_', ' ');
    expect(label).toBe(MANIFEST_KEY_CHECK_LABEL);
    expect(documented.keyCheck).toBe(str(v, 'keyCheck'));
    expect(manifestKeyCheck(KEY)).toBe(str(v, 'keyCheck'));
    const mac = openssl(
      ['dgst', '-sha256', '-mac', 'HMAC', '-macopt', `hexkey:${hex(KEY)}`],
      Buffer.from(label),
    );
    expect(mac.toString()).toContain(str(v, 'keyCheck'));
  });

  it('canonical JSON and signed bytes as documented (length and sha256sum)', () => {
    expect(canonicalManifestJson(documented)).toBe(canonical);
    const signed = manifestSignedBytes(documented);
    const info = one('signed-bytes', v2);
    expect(signed.length).toBe(num(info, 'length'));
    expect(sha(signed)).toBe(str(info, 'sha256'));
    expect(signed.toString('utf8')).toBe(`sluice-manifest-v2\n${canonical}`);
  });

  it('the key and signature: signManifest, node:crypto and openssl pkeyutl agree with the doc', async () => {
    expect(publisherPublicKey(privateKey)).toBe(str(one('public-key', v2), 'key'));
    expect(documented.signature?.key).toBe(str(one('public-key', v2), 'key'));
    const { signature: _s, ...unsigned } = documented;
    expect(signManifest(unsigned, privateKey)).toEqual(documented);
    expect(
      verifyManifest(documented, { trustedPublishers: [publisherPublicKey(privateKey)] }),
    ).toEqual({
      publisher: documented.signature?.key,
    });
    // The documented openssl commands, run: the PEM from the seed, then pkeyutl over the bytes.
    const pem = openssl(['pkey', '-inform', 'DER'], pkcs8);
    const keyPath = join(dir, 'publisher.pem');
    const signedPath = join(dir, 'signed.bin');
    await writeFile(keyPath, pem);
    await writeFile(signedPath, manifestSignedBytes(documented));
    const pub = openssl(['pkey', '-in', keyPath, '-pubout', '-outform', 'DER']);
    expect(pub.subarray(-32).toString('base64')).toBe(documented.signature?.key);
    const sig = openssl(['pkeyutl', '-sign', '-rawin', '-inkey', keyPath, '-in', signedPath]);
    expect(sig.toString('base64')).toBe(documented.signature?.sig);
  });
});

describe('docs/FORMAT.md sealed-file manifest vector', () => {
  it('sizes, sealed SHA-256, HKDF MAC key and plaintext MAC as documented', async () => {
    const v = one('sealed-file', vectorLines('vectors-sealed-file'));
    const n = num(v, 'n');
    const plain = Buffer.from(Array.from({ length: n }, (_, i) => i & 0xff));
    const src = join(dir, `sealed-file-${n}`);
    await writeFile(src, plain);
    await sealFile(src, `${src}.blob`, KEY, { iv: IV });
    const m = await describeSealedFile(src, `${src}.blob`, KEY);
    expect(m).toEqual({
      format: 'sluice-sealed-file-v1',
      algorithm: 'AES-256-CBC',
      plainSize: num(v, 'plainSize'),
      blobSize: num(v, 'blobSize'),
      blobSha256: str(v, 'blobSha256'),
      plainMac: str(v, 'plainMac'),
    });
    const macKey = Buffer.from(hkdfSync('sha256', KEY, Buffer.alloc(0), SEALED_FILE_MAC_INFO, 32));
    expect(macKey.toString('hex')).toBe(str(v, 'macKey'));
    const kdf = openssl([
      'kdf',
      '-keylen',
      '32',
      '-kdfopt',
      'digest:SHA256',
      '-kdfopt',
      `hexkey:${hex(KEY)}`,
      '-kdfopt',
      `info:${SEALED_FILE_MAC_INFO}`,
      'HKDF',
    ]);
    expect(kdf.toString().trim().replaceAll(':', '').toLowerCase()).toBe(str(v, 'macKey'));
    const mac = openssl([
      'dgst',
      '-sha256',
      '-mac',
      'HMAC',
      '-macopt',
      `hexkey:${str(v, 'macKey')}`,
      src,
    ]);
    expect(mac.toString()).toContain(str(v, 'plainMac'));
  });
});
