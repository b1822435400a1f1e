// pullMany with big parts on an S3 CDN (a real Ceph RGW): one CDN config for the whole batch,
// every big part from the CDN (none through the API), and a CDN that refuses the read keys fails
// each resource in its own result.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { S3Objects } from '@sluice/cdn';
import { fetchCdnConfig, type PullRequest, pullMany, push } from '@sluice/core';
import { describe, expect, it } from 'vitest';
import {
  createUserViaApi,
  DEVICE_USER,
  MiB,
  onCleanup,
  PASSWORD,
  removeDir,
  sha,
  signedIn,
  startForTest,
  tempDir,
  UPLOADER,
} from './apiServer.js';

const HW_UP = sha('batch uploader box');
const HW = sha('batch s3 device');

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
  console.warn('pullMany S3 e2e tests skipped: set SLUICE_TEST_S3_* (see scripts/ceph/README.md)');
}

/** A server with S3 storage and an S3 CDN, and `count` resources of ~300 KiB pushed to it. */
async function s3Batch(count: number, downloaderSecret?: string) {
  if (!s3) throw new Error('no S3');
  const id = randomBytes(4).toString('hex');
  const bucket = `sluice-e2e-many-${id}`;
  const admin = new S3Objects({
    endpoint: s3.endpoint,
    region: s3.region,
    bucket,
    uploader: s3.rw,
  });
  await admin.ensureBucket();
  const api = await startForTest({
    storage: {
      kind: 's3',
      endpoint: s3.endpoint,
      region: s3.region,
      bucket: `sluice-e2e-many-store-${id}`,
      credentials: s3.rw,
    },
    cdn: {
      kind: 's3',
      endpoint: s3.endpoint,
      region: s3.region,
      bucket,
      prefix: 'many',
      chunkSize: 64 * 1024,
      downloader: {
        accessKeyId: s3.read.accessKeyId,
        secretAccessKey: downloaderSecret ?? s3.read.secretAccessKey,
      },
      uploader: s3.rw,
    },
  });
  const work = await tempDir('sluice-many-s3-');
  onCleanup(async () => {
    await removeDir(work);
    await emptyAndDrop(bucket);
    admin.destroy();
  });
  await createUserViaApi(api, UPLOADER, 'ResourceUploader');
  await createUserViaApi(api, DEVICE_USER, 'Operator');
  const uploader = await signedIn(api, UPLOADER);
  const cdn = await fetchCdnConfig(uploader, { password: PASSWORD, hardware: HW_UP, write: true });
  const out = join(work, 'out');
  await mkdir(out);
  const shas = new Map<string, string>();
  const requests: PullRequest[] = [];
  for (let i = 0; i < count; i++) {
    const name = `m${i}.bin`;
    const plain = randomBytes(MiB / 4 + i * 4099);
    const src = join(work, name);
    await writeFile(src, plain);
    await push(uploader, 'models', name, src, { cdn });
    shas.set(name, sha(plain));
    requests.push({ folder: 'models', name, to: join(out, name) });
  }
  return { api, out, shas, requests };
}

async function emptyAndDrop(bucket: string): Promise<void> {
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
}

describe.skipIf(!s3)('pullMany on an S3 CDN (Ceph RGW)', () => {
  it('fetches the CDN config once for the whole batch and every big part from the CDN', async () => {
    const b = await s3Batch(5);
    const device = await signedIn(b.api, DEVICE_USER);
    const results = await pullMany(device, b.requests, {
      password: PASSWORD,
      hardware: HW,
      concurrency: 3,
      cdnConcurrency: 4,
    });
    expect(results.map((r) => r.ok)).toEqual([true, true, true, true, true]);
    for (const r of results) expect(sha(await readFile(r.to))).toBe(b.shas.get(r.name));
    expect(b.api.hitCount('POST /cdn-config')).toBe(2); // the uploader's (write) and the batch's
    expect([...b.api.hits.keys()].filter((k) => k.endsWith('/big'))).toEqual([]);
    expect(b.api.hitCount('POST /resources/get/models')).toBe(5);
  });

  it('a CDN that refuses the read keys fails each resource in its result, naming no secret', async () => {
    const b = await s3Batch(3, 'not-the-read-secret');
    const device = await signedIn(b.api, DEVICE_USER);
    const results = await pullMany(device, b.requests, { password: PASSWORD, hardware: HW });
    expect(results.map((r) => r.ok)).toEqual([false, false, false]);
    for (const r of results) {
      if (r.ok) continue;
      expect(['ERR_FORBIDDEN', 'ERR_CDN']).toContain(r.error.code);
      expect(r.error.message).not.toContain('not-the-read-secret');
      expect(r.error.message).not.toContain(PASSWORD);
    }
    expect(await readdir(b.out)).toEqual([]);
  });
});
