// Versions with the big parts on an S3 CDN (a real Ceph RGW): a device pulls a named version and
// the released one from the CDN, and deleting a version, by hand or by retention, removes its CDN
// object (and only its own).
import { randomBytes } from 'node:crypto';
import { S3Objects } from '@sluice/cdn';
import { listVersions, pull, push, releaseVersion, removeVersion } from '@sluice/core';
import { describe, expect, it } from 'vitest';
import {
  createUserViaApi,
  DEVICE_USER,
  MiB,
  onCleanup,
  PASSWORD,
  sha,
  signedIn,
  startForTest,
  UPLOADER,
} from './apiServer.js';

const HW_UP = sha('versions uploader');
const HW = sha('versions device');

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
if (!s3 && env.CI === 'true') throw new Error('CI=true but SLUICE_TEST_S3_ENDPOINT is not set');

/** A server keeping `keepVersions` versions, its parts in S3 and its big parts on an S3 CDN. */
async function s3World(keepVersions: number) {
  if (!s3) throw new Error('no S3');
  const id = randomBytes(4).toString('hex');
  const cdnBucket = `sluice-e2e-vcdn-${id}`;
  const cdn = new S3Objects({
    endpoint: s3.endpoint,
    region: s3.region,
    bucket: cdnBucket,
    uploader: s3.rw,
  });
  await cdn.ensureBucket();
  const api = await startForTest({
    keepVersions,
    storage: {
      kind: 's3',
      endpoint: s3.endpoint,
      region: s3.region,
      bucket: `sluice-e2e-vstore-${id}`,
      credentials: s3.rw,
    },
    cdn: {
      kind: 's3',
      endpoint: s3.endpoint,
      region: s3.region,
      bucket: cdnBucket,
      prefix: 'cdn',
      chunkSize: MiB,
      downloader: s3.read,
      uploader: s3.rw,
    },
  });
  onCleanup(async () => {
    for (const key of await cdnKeys(cdnBucket)) await cdn.remove(key).catch(() => {});
  });
  await createUserViaApi(api, UPLOADER, 'ResourceUploader');
  await createUserViaApi(api, DEVICE_USER, 'Operator');
  const uploader = await signedIn(api, UPLOADER);
  const device = await signedIn(api, DEVICE_USER);
  return { api, cdnBucket, uploader, device };
}

/** The object keys in `bucket` (read-write test keys). */
async function cdnKeys(bucket: string): Promise<string[]> {
  const { S3Client, ListObjectsV2Command } = await import('@aws-sdk/client-s3');
  if (!s3) throw new Error('no S3');
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: s3.rw,
  });
  try {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    return (listed.Contents ?? []).map((o) => o.Key ?? '').sort();
  } finally {
    client.destroy();
  }
}

describe.skipIf(!s3)('versions on an S3 CDN (Ceph RGW)', () => {
  it('pulls the released or a named version from the CDN; deletions remove their objects', async () => {
    const w = await s3World(2);
    const plains = [0, 1, 2].map(() => randomBytes(2 * MiB + 99));
    const keysAfter: string[][] = [];
    for (const plain of plains) {
      await push(w.uploader, 'models', 'm.bin', plain, { password: PASSWORD, hardware: HW_UP });
      keysAfter.push(await cdnKeys(w.cdnBucket));
    }
    // Retention (2): v1 and its CDN object went with the third push.
    expect(
      (await listVersions(w.device, 'models', 'm.bin')).versions.map((v) => v.version),
    ).toEqual([2, 3]);
    expect(keysAfter.map((k) => k.length)).toEqual([1, 2, 2]);
    const v1Key = keysAfter[0]?.[0] as string;
    expect(keysAfter[2]).not.toContain(v1Key);

    const get = async (version?: number) =>
      pull(w.device, 'models', 'm.bin', {
        to: 'buffer',
        password: PASSWORD,
        hardware: HW,
        version,
      });
    expect(sha((await get()).data)).toBe(sha(plains[2] as Buffer));
    expect(sha((await get(2)).data)).toBe(sha(plains[1] as Buffer));
    // Rollback, then delete the bad v3 with its object; nothing went through the API's big route.
    await releaseVersion(w.uploader, 'models', 'm.bin', 2);
    expect(sha((await get()).data)).toBe(sha(plains[1] as Buffer));
    await removeVersion(w.uploader, 'models', 'm.bin', 3);
    const left = await cdnKeys(w.cdnBucket);
    expect(left).toHaveLength(1);
    expect(keysAfter[1]).toContain(left[0]);
    expect(w.api.hitCount('GET /resources/models/m.bin/big')).toBe(0);
    expect((await get()).resource.version).toBe(2);
  });
});
