// A server whose big parts live on an S3 CDN (a real Ceph RGW) that devices reach through a
// FaultProxy: the CDN endpoint the server hands out is the proxy's, the server's own storage and
// the uploader talk to radosgw directly.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { S3Objects } from '@sluice/cdn';
import { push, type Session } from '@sluice/core';
import {
  type ApiServer,
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
} from '../apiServer.js';
import type { FaultProxy } from './faultProxy.js';
import { CHUNK, proxyFor } from './faultWorld.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export interface S3Env {
  endpoint: string;
  region: string;
  rw: { accessKeyId: string; secretAccessKey: string };
  read: { accessKeyId: string; secretAccessKey: string };
}

/** The shared test RGW from SLUICE_TEST_S3_*, or undefined (then the S3 faults skip, outside CI). */
export function sharedS3(): S3Env | undefined {
  const env = process.env;
  if (!env.SLUICE_TEST_S3_ENDPOINT) {
    if (env.CI === 'true') throw new Error('CI=true but SLUICE_TEST_S3_ENDPOINT is not set');
    return undefined;
  }
  return {
    endpoint: env.SLUICE_TEST_S3_ENDPOINT,
    region: env.SLUICE_TEST_S3_REGION || 'us-east-1',
    rw: {
      accessKeyId: env.SLUICE_TEST_S3_ACCESS_KEY ?? '',
      secretAccessKey: env.SLUICE_TEST_S3_SECRET_KEY ?? '',
    },
    read: {
      accessKeyId: env.SLUICE_TEST_S3_READ_ACCESS_KEY || (env.SLUICE_TEST_S3_ACCESS_KEY ?? ''),
      secretAccessKey: env.SLUICE_TEST_S3_READ_SECRET_KEY || (env.SLUICE_TEST_S3_SECRET_KEY ?? ''),
    },
  };
}

export interface S3World {
  api: ApiServer;
  /** The proxy in front of radosgw that devices download through. */
  cdnProxy: FaultProxy;
  work: string;
  plain: Buffer;
  device: Session;
  bucket: string;
  /** Object key of the pushed big part. */
  key: string;
  /** A read-write S3 client for the test's own changes to the bucket. */
  s3: S3Client;
}

/** Pushes `size` random bytes as models/m.bin with the big part on a fresh CDN bucket. */
export async function s3World(s3: S3Env, size = 2 * MiB + 3000): Promise<S3World> {
  const id = randomBytes(4).toString('hex');
  const bucket = `sluice-faults-${id}`;
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: s3.rw,
    maxAttempts: 10,
  });
  await new S3Objects({
    endpoint: s3.endpoint,
    region: s3.region,
    bucket,
    uploader: s3.rw,
  }).ensureBucket();
  onCleanup(async () => {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    for (const o of listed.Contents ?? []) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }));
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
    client.destroy();
  });
  const cdnProxy = await proxyFor(s3.endpoint);
  const api = await startForTest({
    storage: {
      kind: 's3',
      endpoint: s3.endpoint,
      region: s3.region,
      bucket: `sluice-faults-store-${id}`,
      credentials: s3.rw,
    },
    cdn: {
      kind: 's3',
      endpoint: cdnProxy.url,
      region: s3.region,
      bucket,
      prefix: 'cdn',
      chunkSize: CHUNK,
      downloader: s3.read,
      uploader: s3.rw,
    },
  });
  const work = await tempDir('sluice-s3faults-');
  onCleanup(() => removeDir(work));
  await createUserViaApi(api, UPLOADER, 'ResourceUploader');
  await createUserViaApi(api, DEVICE_USER, 'Operator');
  const plain = randomBytes(size);
  await writeFile(join(work, 'src.bin'), plain);
  const uploader = await signedIn(api, UPLOADER);
  // The upload goes through the proxy too (its endpoint is the CDN's); no fault is set yet.
  await push(uploader, 'models', 'm.bin', join(work, 'src.bin'), {
    password: PASSWORD,
    hardware: sha('uploader box'),
  });
  const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
  const key = listed.Contents?.[0]?.Key;
  if (key === undefined) throw new Error('the big part is not in the CDN bucket');
  cdnProxy.log.length = 0;
  const device = await signedIn(api, DEVICE_USER);
  return { api, cdnProxy, work, plain, device, bucket, key, s3: client };
}

/** Replaces the object at `key` (one PUT: a new ETag). */
export async function putObject(w: S3World, body: Buffer): Promise<void> {
  await w.s3.send(new PutObjectCommand({ Bucket: w.bucket, Key: w.key, Body: body }));
}

/** Ranged GETs of the big part seen by the CDN proxy. */
export function cdnGets(w: S3World) {
  return w.cdnProxy.requests('GET', w.key).filter((e) => e.range !== undefined);
}
