// ParcelClient against the real server on loopback, with parcels on the data directory's files and
// on a real S3 store (Ceph RGW, when SLUICE_TEST_S3_* is set).
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ParcelClient } from '@sluice/core';
import { describe, expect, it } from 'vitest';
import {
  MiB,
  onCleanup,
  rejection,
  removeDir,
  type StartOptions,
  sha,
  startForTest,
  tempDir,
} from './apiServer.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const env = process.env;
const s3 = env.SLUICE_TEST_S3_ENDPOINT
  ? {
      endpoint: env.SLUICE_TEST_S3_ENDPOINT,
      region: env.SLUICE_TEST_S3_REGION || 'us-east-1',
      credentials: {
        accessKeyId: env.SLUICE_TEST_S3_ACCESS_KEY ?? '',
        secretAccessKey: env.SLUICE_TEST_S3_SECRET_KEY ?? '',
      },
    }
  : undefined;
if (!s3) {
  if (env.CI === 'true') throw new Error('CI=true but SLUICE_TEST_S3_ENDPOINT is not set');
  console.warn(
    'S3 parcel e2e tests skipped: set SLUICE_TEST_S3_* (eval "$(node scripts/ceph/ceph.mjs start --dir /tmp/sluice-ceph)")',
  );
}

/** Objects in `bucket`, and a cleanup that empties and drops it. */
async function s3Bucket(bucket: string) {
  const { S3Client, ListObjectsV2Command, DeleteObjectCommand, DeleteBucketCommand } = await import(
    '@aws-sdk/client-s3'
  );
  if (!s3) throw new Error('no S3');
  const client = new S3Client({ ...s3, forcePathStyle: true });
  const list = async () =>
    ((await client.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map(
      (o) => o.Key ?? '',
    );
  onCleanup(async () => {
    for (const key of await list().catch(() => [])) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
    client.destroy();
  });
  return { list };
}

interface World {
  url: string;
  dataDir: string;
  work: string;
  /** The names of the stored parcel objects (S3) or files (file storage). */
  stored(): Promise<string[]>;
  client(): Promise<ParcelClient>;
}

async function world(kind: 'file' | 's3'): Promise<World> {
  const options: StartOptions = {};
  let stored: () => Promise<string[]>;
  if (kind === 's3') {
    if (!s3) throw new Error('no S3');
    const bucket = `sluice-e2e-parcels-${randomBytes(4).toString('hex')}`;
    options.storage = { kind: 's3', ...s3, bucket, prefix: 'parts' };
    const b = await s3Bucket(bucket);
    stored = b.list;
  } else {
    stored = async () => [];
  }
  const api = await startForTest(options);
  if (kind === 'file') {
    const dir = join(api.dataDir, 'parcels', 'blobs');
    stored = async () => (await readdir(dir).catch(() => [])).filter((n) => n !== '.tmp');
  }
  const work = await tempDir('sluice-parcels-e2e-');
  onCleanup(() => removeDir(work));
  let n = 0;
  return {
    url: api.url,
    dataDir: api.dataDir,
    work,
    stored,
    async client() {
      const keyFile = join(work, `key-${n++}.pem`);
      await ParcelClient.writeKeyFile(keyFile);
      return new ParcelClient({ baseUrl: api.url, keyFile });
    },
  };
}

for (const kind of ['file', 's3'] as const) {
  describe.skipIf(kind === 's3' && !s3)(`ParcelClient with ${kind} storage`, () => {
    it('puts bytes, a file and a stream; inspects, gets, removes; then ERR_GONE', async () => {
      const w = await world(kind);
      const client = await w.client();
      const bytes = randomBytes(100_000);
      const first = await client.put(bytes);
      expect(first).toEqual({ id: client.parcelId(sha(bytes)), existed: false });
      expect(await client.put(bytes)).toEqual({ id: first.id, existed: true });

      const file = join(w.work, 'model.bin');
      const content = randomBytes(3 * MiB + 17);
      await writeFile(file, content);
      const fromFile = await client.put(file);
      expect(fromFile.existed).toBe(false);
      const streamed = randomBytes(MiB + 5);
      const fromStream = await client.put(
        Readable.from([streamed.subarray(0, 1000), streamed.subarray(1000)]),
      );
      expect(fromStream.id).toBe(client.parcelId(sha(streamed)));
      expect(await w.stored()).toHaveLength(3);

      expect(await client.inspect(fromFile.id)).toEqual({
        id: fromFile.id,
        size: content.length,
        sha256: sha(content),
        createdAt: expect.any(String),
      });
      expect(await client.inspect(fromFile.id, 'owner')).toEqual({ owner: client.address });

      const out = join(w.work, 'out', 'model.copy');
      await mkdir(join(w.work, 'out'));
      const got = await client.get(fromFile.id, { to: out });
      expect(got).toMatchObject({ path: out, size: content.length, sha256: sha(content) });
      expect((await readFile(out)).equals(content)).toBe(true);
      expect((await stat(out)).mode & 0o077).toBe(0);
      expect(await readdir(join(w.work, 'out'))).toEqual(['model.copy']);
      const inMemory = await client.get(fromStream.id, { to: 'buffer' });
      expect(inMemory.data?.equals(streamed)).toBe(true);

      await client.remove(fromFile.id);
      expect(await w.stored()).toHaveLength(2);
      for (const call of [
        () => client.get(fromFile.id, { to: join(w.work, 'again') }),
        () => client.remove(fromFile.id),
        () => client.inspect(fromFile.id),
        () => client.inspect(fromFile.id, 'owner'),
      ]) {
        const e = await rejection(call());
        expect(e.code).toBe('ERR_GONE');
        expect((e as unknown as { status: number }).status).toBe(410);
      }
      expect(await readdir(w.work)).not.toContain('again');
      const unknown = sha('nobody stored this');
      expect((await rejection(client.get(unknown, { to: 'buffer' }))).code).toBe('ERR_NOT_FOUND');
      expect((await rejection(client.remove(unknown))).code).toBe('ERR_NOT_FOUND');
    });

    it('another key can inspect a parcel but not get or remove it', async () => {
      const w = await world(kind);
      const owner = await w.client();
      const other = await w.client();
      const { id } = await owner.put(Buffer.from('private parcel'));
      expect(await other.inspect(id, 'owner')).toEqual({ owner: owner.address });
      expect((await rejection(other.get(id, { to: 'buffer' }))).code).toBe('ERR_FORBIDDEN');
      expect((await rejection(other.remove(id))).code).toBe('ERR_FORBIDDEN');
      // The same content under the other key is its own parcel.
      const own = await other.put(Buffer.from('private parcel'));
      expect(own).toEqual({ id: other.parcelId(sha('private parcel')), existed: false });
      expect(own.id).not.toBe(id);
      expect((await owner.get(id, { to: 'buffer' })).data?.toString()).toBe('private parcel');
    });
  });
}

describe('ParcelClient against tampered storage and aborts', () => {
  it('refuses bytes that do not match the metadata and leaves no file behind', async () => {
    const w = await world('file');
    const client = await w.client();
    const content = randomBytes(200_000);
    const { id } = await client.put(content);
    const [blob] = await w.stored();
    const path = join(w.dataDir, 'parcels', 'blobs', blob ?? '');
    const tampered = Buffer.from(content);
    tampered[1234] = (tampered[1234] ?? 0) ^ 0xff;
    await writeFile(path, tampered);
    const out = join(w.work, 'tampered.out');
    const e = await rejection(client.get(id, { to: out }));
    expect(e.code).toBe('ERR_BAD_RESPONSE');
    expect(await readdir(w.work)).toEqual(
      expect.not.arrayContaining([expect.stringContaining('tampered')]),
    );
    expect((await rejection(client.get(id, { to: 'buffer' }))).code).toBe('ERR_BAD_RESPONSE');
  });

  it('an aborted get or put rejects with ERR_ABORTED and writes nothing', async () => {
    const w = await world('file');
    const client = await w.client();
    const { id } = await client.put(randomBytes(1000));
    const aborted = AbortSignal.abort();
    const out = join(w.work, 'aborted.out');
    expect((await rejection(client.get(id, { to: out, signal: aborted }))).code).toBe(
      'ERR_ABORTED',
    );
    expect((await rejection(client.put(randomBytes(10), { signal: aborted }))).code).toBe(
      'ERR_ABORTED',
    );
    expect(await readdir(w.work)).toEqual(expect.not.arrayContaining(['aborted.out']));
    expect(await w.stored()).toHaveLength(1);
  });
});
