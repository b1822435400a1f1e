// The resource client with the big parts on an S3 CDN (a real Ceph RGW): the server keeps small
// parts in its own bucket and hands out read keys (and write keys to uploaders) through
// /cdn-config; the client uploads big parts to the CDN first and pulls them chunk by chunk.
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { S3Downloader, S3Objects } from '@sluice/cdn';
import { fetchCdnConfig, pull, push } from '@sluice/core';
import { describe, expect, it } from 'vitest';
import {
  createUserViaApi,
  DEVICE_USER,
  MiB,
  onCleanup,
  PASSWORD,
  rejection,
  removeDir,
  type StartOptions,
  sha,
  signedIn,
  startForTest,
  tempDir,
  UPLOADER,
} from './apiServer.js';

const HW_UP = sha('uploader box');
const HW = sha('s3 device');

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const env = process.env;
const s3 = env.SLUICE_TEST_S3_ENDPOINT
  ? {
      endpoint: env.SLUICE_TEST_S3_ENDPOINT,
      region: env.SLUICE_TEST_S3_REGION || 'us-east-1',
      rw: {
        accessKeyId: env.SLUICE_TEST_S3_ACCESS_KEY ?? '',
        secretAccessKey: env.SLUICE_TEST_S3_SECRET_KEY ?? '',
      },
      read: {
        accessKeyId: env.SLUICE_TEST_S3_READ_ACCESS_KEY || (env.SLUICE_TEST_S3_ACCESS_KEY ?? ''),
        secretAccessKey:
          env.SLUICE_TEST_S3_READ_SECRET_KEY || (env.SLUICE_TEST_S3_SECRET_KEY ?? ''),
      },
    }
  : undefined;
if (!s3) {
  if (env.CI === 'true') throw new Error('CI=true but SLUICE_TEST_S3_ENDPOINT is not set');
  console.warn(
    'S3 e2e tests skipped: set SLUICE_TEST_S3_* (eval "$(node scripts/ceph/ceph.mjs start --dir /tmp/sluice-ceph)")',
  );
}

/** A server whose parts live in S3 and whose CDN is another bucket of the same RGW. */
async function s3World(
  options: { downloaderSecret?: string; beforeListen?: StartOptions['beforeListen'] } = {},
) {
  if (!s3) throw new Error('no S3');
  const id = randomBytes(4).toString('hex');
  const cdnBucket = `sluice-e2e-cdn-${id}`;
  const cdnAdmin = new S3Objects({
    endpoint: s3.endpoint,
    region: s3.region,
    bucket: cdnBucket,
    uploader: s3.rw,
  });
  await cdnAdmin.ensureBucket();
  const cdnReader = new S3Downloader({
    endpoint: s3.endpoint,
    region: s3.region,
    bucket: cdnBucket,
    uploader: s3.rw,
  });
  const api = await startForTest({
    ...(options.beforeListen ? { beforeListen: options.beforeListen } : {}),
    storage: {
      kind: 's3',
      endpoint: s3.endpoint,
      region: s3.region,
      bucket: `sluice-e2e-store-${id}`,
      credentials: s3.rw,
    },
    cdn: {
      kind: 's3',
      endpoint: s3.endpoint,
      region: s3.region,
      bucket: cdnBucket,
      prefix: 'models-cdn',
      chunkSize: MiB,
      downloader: {
        accessKeyId: s3.read.accessKeyId,
        secretAccessKey: options.downloaderSecret ?? s3.read.secretAccessKey,
      },
      uploader: s3.rw,
    },
  });
  const work = await tempDir('sluice-s3e2e-');
  onCleanup(async () => {
    await removeDir(work);
    await emptyAndDrop(cdnAdmin, cdnBucket);
    cdnReader.destroy();
  });
  await createUserViaApi(api, UPLOADER, 'ResourceUploader');
  await createUserViaApi(api, DEVICE_USER, 'Operator');
  const uploader = await signedIn(api, UPLOADER);
  const device = await signedIn(api, DEVICE_USER);
  return { api, work, cdnAdmin, cdnReader, uploader, device };
}

async function emptyAndDrop(cdn: S3Objects, bucket: string): Promise<void> {
  const { S3Client, ListObjectsV2Command, DeleteObjectCommand, DeleteBucketCommand } = await import(
    '@aws-sdk/client-s3'
  );
  if (!s3) return;
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: s3.rw,
  });
  const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
  for (const o of listed.Contents ?? []) {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }));
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
  client.destroy();
  void cdn;
}

/** The objects in `bucket`, listed with the read-write test keys. */
async function listBucket(bucket: string) {
  const { S3Client, ListObjectsV2Command } = await import('@aws-sdk/client-s3');
  if (!s3) throw new Error('no S3');
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: s3.rw,
  });
  try {
    return await client.send(new ListObjectsV2Command({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
}

describe.skipIf(!s3)('resources on an S3 CDN (Ceph RGW)', () => {
  it('push puts the big part on the CDN first; a device pulls it from there, verified chunk by chunk', async () => {
    const w = await s3World();
    const plain = randomBytes(9 * MiB + 4321);
    const src = join(w.work, 'src.bin');
    await writeFile(src, plain);
    const progress: number[] = [];
    const r = await push(w.uploader, 'models', 'model.bin', src, {
      password: PASSWORD,
      hardware: HW_UP,
      onProgress: (p) => progress.push(p.loaded),
    });
    expect(r.version).toBe(1);
    expect(progress.length).toBeGreaterThan(0);
    // Nothing of the big part went through the API.
    expect(w.api.hitCount('GET /resources/models/model.bin/big')).toBe(0);

    const out = join(w.work, 'out.bin');
    const pulled = await pull(w.device, 'models', 'model.bin', {
      to: out,
      password: PASSWORD,
      hardware: HW,
    });
    expect(pulled.size).toBe(plain.length);
    expect(sha(await readFile(out))).toBe(sha(plain));
    expect(w.api.hitCount('GET /resources/models/model.bin/big')).toBe(0);
    expect(w.api.hitCount('POST /cdn-config')).toBe(2); // uploader (write) and device (read)
  });

  it('a chunk corrupted in the bucket is ERR_CHUNK_DIGEST and leaves no output file', async () => {
    const w = await s3World();
    const src = join(w.work, 'src.bin');
    await writeFile(src, randomBytes(5 * MiB));
    await push(w.uploader, 'models', 'model.bin', src, {
      password: PASSWORD,
      hardware: HW_UP,
    });
    // Find the object, flip one byte in its third chunk, put it back (same size).
    const cdn = await fetchCdnConfig(w.device, { password: PASSWORD, hardware: HW });
    if (cdn.kind !== 's3') throw new Error('expected an S3 CDN');
    const listed = await listBucket(cdn.bucket);
    const key = listed.Contents?.[0]?.Key as string;
    expect(key.startsWith('models-cdn/models/model.bin/')).toBe(true);
    const chunks: Buffer[] = [];
    await w.cdnReader.download({
      url: key,
      size: listed.Contents?.[0]?.Size as number,
      chunkSize: MiB,
      onChunk: async (i, d) => {
        chunks[i] = d;
      },
    });
    const body = Buffer.concat(chunks);
    body[2 * MiB + 100] = (body[2 * MiB + 100] as number) ^ 0xff;
    await w.cdnAdmin.upload(key, body);

    const out = join(w.work, 'out.bin');
    const err = await rejection(
      pull(w.device, 'models', 'model.bin', {
        to: out,
        password: PASSWORD,
        hardware: HW,
      }),
    );
    expect(err.code).toBe('ERR_CHUNK_DIGEST');
    expect((await readdir(w.work)).sort()).toEqual(['src.bin']);
  });

  it('a device user asking for the uploader keys is refused; its read keys cannot write', async () => {
    const w = await s3World();
    const err = await rejection(
      fetchCdnConfig(w.device, { password: PASSWORD, hardware: HW, write: true }),
    );
    expect((err as { status?: number }).status).toBe(403);
    const read = await fetchCdnConfig(w.device, { password: PASSWORD, hardware: HW });
    if (read.kind !== 's3' || read.downloader === undefined) throw new Error('expected read keys');
    expect(read.uploader).toBeUndefined();
    const asDevice = new S3Objects({
      endpoint: read.endpoint,
      region: read.region,
      bucket: read.bucket,
      uploader: read.downloader,
    });
    await expect(asDevice.upload('models-cdn/evil.big', Buffer.from('x'))).rejects.toThrow();
    // An uploader that does not pass its password cannot fetch write keys, and stores nothing.
    const src = join(w.work, 'src.bin');
    await writeFile(src, randomBytes(MiB));
    const noPw = await rejection(push(w.uploader, 'models', 'm.bin', src));
    expect(noPw.code).toBe('ERR_INVALID_ARG');
    expect(noPw.message).toContain(read.endpoint);
  });

  it('wrong CDN read keys: a clear error naming the endpoint, never the secret, no output', async () => {
    const wrongSecret = `wrong-${randomBytes(12).toString('hex')}`;
    const w = await s3World({ downloaderSecret: wrongSecret });
    const src = join(w.work, 'src.bin');
    await writeFile(src, randomBytes(3 * MiB));
    await push(w.uploader, 'models', 'model.bin', src, {
      password: PASSWORD,
      hardware: HW_UP,
    });
    const out = join(w.work, 'out.bin');
    const err = await rejection(
      pull(w.device, 'models', 'model.bin', {
        to: out,
        password: PASSWORD,
        hardware: HW,
      }),
    );
    expect(err.code).toBe('ERR_CDN');
    expect(err.message).toContain(s3?.endpoint as string);
    const shown = `${err.message}\n${err.stack}\n${JSON.stringify(err)}\n${String(err.cause)}`;
    expect(shown).not.toContain(wrongSecret);
    expect((await readdir(w.work)).sort()).toEqual(['src.bin']);
  });

  it('streams sealed parts of every shape straight to the CDN; with a cache it fills the cache too', async () => {
    const w = await s3World();
    // Blob boundaries around the split point and chunk edges (chunkSize 1 MiB, small part ≤ 30%).
    const sizes = [1, 15, 16, 4095, MiB, MiB + 1, 3 * MiB - 16, 3 * MiB + 17];
    for (const [i, size] of sizes.entries()) {
      const plain = randomBytes(size);
      const src = join(w.work, `src-${i}`);
      await writeFile(src, plain);
      const cacheDir = i % 2 === 0 ? undefined : join(w.work, 'cache');
      await push(w.uploader, 'models', `m${i}.bin`, src, {
        password: PASSWORD,
        hardware: HW_UP,
        ...(cacheDir ? { cacheDir } : {}),
      });
      const got = await pull(w.device, 'models', `m${i}.bin`, {
        to: 'buffer',
        password: PASSWORD,
        hardware: HW,
        ...(cacheDir ? { cacheDir } : {}),
      });
      expect([size, sha(got.data)]).toEqual([size, sha(plain)]);
      // The uploader's cache already held the big part: the device (same machine) used it.
      expect([size, got.fromCache]).toEqual([size, cacheDir !== undefined]);
    }
  });

  it('when the API refuses the registration, the big part already on the CDN is removed', async () => {
    const w = await s3World({
      beforeListen: (s) => {
        s.app.addHook('onRequest', async (req, reply) => {
          if (req.method === 'POST' && req.url === '/resources/models') {
            await reply.code(503).send({ error: 'maintenance', code: 'ERR_UNAVAILABLE' });
          }
        });
      },
    });
    const src = join(w.work, 'src.bin');
    await writeFile(src, randomBytes(3 * MiB));
    const err = await rejection(
      push(w.uploader, 'models', 'model.bin', src, {
        password: PASSWORD,
        hardware: HW_UP,
      }),
    );
    expect((err as { status?: number }).status).toBe(503);
    const cdn = await fetchCdnConfig(w.uploader, { password: PASSWORD, hardware: HW_UP });
    if (cdn.kind !== 's3') throw new Error('expected an S3 CDN');
    const listed = await listBucket(cdn.bucket);
    expect(listed.Contents ?? []).toEqual([]);
  });
});
