// Test-only: a plain SDK client to look into and clean up the buckets the S3 tests use.
import {
  AbortMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import type { S3TestEnv } from './test-helpers.js';

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

/** Every object key in `bucket` (sorted); a missing bucket has none. */
export async function objectKeys(client: S3Client, bucket: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  try {
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) if (o.Key !== undefined) keys.push(o.Key);
      token = page.NextContinuationToken;
    } while (token !== undefined);
  } catch (e) {
    if ((e as { name?: unknown }).name === 'NoSuchBucket') return [];
    throw e;
  }
  return keys.sort();
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
    for (const key of await objectKeys(client, bucket)) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } catch (e) {
    if ((e as { name?: unknown }).name !== 'NoSuchBucket') throw e;
  }
}
