// Test-only: the S3 store the tests run against (a Ceph RGW started by scripts/ceph/ceph.mjs).
import {
  AbortMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import type { S3BucketSettings } from './s3/s3Bucket.js';

export interface S3TestEnv {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  readAccessKeyId: string;
  readSecretAccessKey: string;
  /** The data dir of that cluster, when the runner started it. */
  cephDir?: string;
}

const ENABLE = 'to run them: eval "$(node scripts/ceph/ceph.mjs start --dir /tmp/sluice-ceph)"';

/**
 * The SLUICE_TEST_S3_* variables, or undefined when they are absent: then the S3 tests are skipped
 * with one line saying how to enable them (unless `quiet`), and with CI=true this throws instead.
 */
export function s3TestEnv(options: { quiet?: boolean } = {}): S3TestEnv | undefined {
  // The SDK warns about Node 20 on every client; keep test output for test failures.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const e = process.env;
  const endpoint = e.SLUICE_TEST_S3_ENDPOINT;
  const accessKeyId = e.SLUICE_TEST_S3_ACCESS_KEY;
  const secretAccessKey = e.SLUICE_TEST_S3_SECRET_KEY;
  if (!endpoint || !accessKeyId || !secretAccessKey) {
    if (e.CI === 'true') {
      throw new Error(
        `SLUICE_TEST_S3_ENDPOINT/ACCESS_KEY/SECRET_KEY are not set and CI=true: S3 tests are never skipped in CI; ${ENABLE}`,
      );
    }
    if (!options.quiet) {
      console.warn(`S3 tests skipped: SLUICE_TEST_S3_ENDPOINT is not set; ${ENABLE}`);
    }
    return undefined;
  }
  return {
    endpoint,
    region: e.SLUICE_TEST_S3_REGION || 'us-east-1',
    accessKeyId,
    secretAccessKey,
    readAccessKeyId: e.SLUICE_TEST_S3_READ_ACCESS_KEY || accessKeyId,
    readSecretAccessKey: e.SLUICE_TEST_S3_READ_SECRET_KEY || secretAccessKey,
    cephDir: e.SLUICE_TEST_CEPH_DIR || undefined,
  };
}

/** S3BucketSettings for `bucket`: read keys as downloader, read-write keys as uploader. */
export function testSettings(env: S3TestEnv, bucket: string): S3BucketSettings {
  return {
    endpoint: env.endpoint,
    region: env.region,
    bucket,
    downloader: { accessKeyId: env.readAccessKeyId, secretAccessKey: env.readSecretAccessKey },
    uploader: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
  };
}

/** A bucket name no other test run uses. */
export function uniqueBucket(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A plain SDK client with the read-write keys, for test setup and checks. */
export function adminClient(env: S3TestEnv): S3Client {
  return new S3Client({
    endpoint: env.endpoint,
    region: env.region,
    forcePathStyle: true,
    credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Keys of the multipart uploads still open in `bucket`. */
export async function openMultipartUploads(client: S3Client, bucket: string): Promise<string[]> {
  const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (out.Uploads ?? []).map((u) => u.Key ?? '');
}

/** Aborts open multipart uploads, deletes every object, then the bucket. Missing bucket: no-op. */
export async function deleteBucket(client: S3Client, bucket: string): Promise<void> {
  try {
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    for (const u of uploads.Uploads ?? []) {
      await client.send(
        new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }),
      );
    }
    for (;;) {
      const list = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      const objects = list.Contents ?? [];
      if (objects.length === 0) break;
      await Promise.all(
        objects.map((o) => client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }))),
      );
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } catch (e) {
    if ((e as { name?: unknown }).name !== 'NoSuchBucket') throw e;
  }
}
