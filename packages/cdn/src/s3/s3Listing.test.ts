import { randomBytes } from 'node:crypto';
import {
  CreateMultipartUploadCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { isSluiceError } from '@sluice/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminClient,
  deleteBucket,
  openMultipartUploads,
  type S3TestEnv,
  s3TestEnv,
  testSettings,
  uniqueBucket,
} from '../testS3.js';
import { S3Objects } from './s3Objects.js';

const env = s3TestEnv();
const bucket = uniqueBucket('sluice-list');
const admin = env ? adminClient(env) : undefined;
const opened: S3Objects[] = [];

afterAll(async () => {
  for (const o of opened.splice(0)) o.destroy();
  if (admin) {
    await deleteBucket(admin, bucket);
    admin.destroy();
  }
});

function store(): { env: S3TestEnv; admin: S3Client } {
  if (!env || !admin) throw new Error('S3 tests run only with SLUICE_TEST_S3_* set');
  return { env, admin };
}

function objects(settings: object = {}): S3Objects {
  const o = new S3Objects({ ...testSettings(store().env, bucket), ...settings });
  opened.push(o);
  return o;
}

async function put(key: string, size: number): Promise<void> {
  await store().admin.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: randomBytes(size) }),
  );
}

/** Begins a multipart upload of `key` and stores one 5 MiB part, never completing it. */
async function abandonUpload(key: string): Promise<string> {
  const { admin } = store();
  const { UploadId } = await admin.send(
    new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }),
  );
  if (UploadId === undefined) throw new Error('no upload id');
  const Body = randomBytes(5 * 1024 * 1024);
  await admin.send(
    new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body }),
  );
  return UploadId;
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe.skipIf(!env)('S3Objects listings on Ceph RGW', () => {
  beforeAll(async () => {
    await objects().ensureBucket();
  });

  it('lists every object under a prefix across pages, with size and last-modified time', async () => {
    const before = Date.now();
    for (let i = 0; i < 5; i++) await put(`list/a/${i}`, 10 + i);
    await put('list/b/0', 1);
    await put('list/a', 1);
    const listed = await collect(objects().listObjects('list/a/', { pageSize: 2 }));
    expect(listed.map((o) => o.key)).toEqual([0, 1, 2, 3, 4].map((i) => `list/a/${i}`));
    expect(listed.map((o) => o.size)).toEqual([10, 11, 12, 13, 14]);
    for (const o of listed) {
      expect(o.lastModified).toBeInstanceOf(Date);
      // S3 times may be truncated to the second.
      expect(o.lastModified.getTime()).toBeGreaterThanOrEqual(before - 1000);
      expect(o.lastModified.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    }
    expect(await collect(objects().listObjects('list/none/'))).toEqual([]);
  });

  it('lists open multipart uploads across pages and aborts them, dropping their parts', async () => {
    const before = Date.now();
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await abandonUpload(`uploads/x/${i}`));
    await abandonUpload('other/0');
    const o = objects();
    const open = await collect(o.listUploads('uploads/', { pageSize: 1 }));
    expect(open.map((u) => u.key)).toEqual(['uploads/x/0', 'uploads/x/1', 'uploads/x/2']);
    expect(open.map((u) => u.uploadId)).toEqual(ids);
    for (const u of open) {
      expect(u.initiated.getTime()).toBeGreaterThanOrEqual(before - 1000);
      expect(u.initiated.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    }
    const first = open[0];
    if (first === undefined) throw new Error('no upload listed');
    expect(await o.abortUpload(first.key, first.uploadId)).toBe(true);
    // Already gone: reported, not thrown.
    expect(await o.abortUpload(first.key, first.uploadId)).toBe(false);
    expect((await openMultipartUploads(store().admin, bucket)).sort()).toEqual([
      'other/0',
      'uploads/x/1',
      'uploads/x/2',
    ]);
    for (const u of await collect(o.listUploads(''))) await o.abortUpload(u.key, u.uploadId);
    expect(await openMultipartUploads(store().admin, bucket)).toEqual([]);
  });

  it('stats an object (size, last-modified) and answers null for a missing one', async () => {
    await put('stat/one', 42);
    const stat = await objects().stat('stat/one');
    expect(stat?.key).toBe('stat/one');
    expect(stat?.size).toBe(42);
    expect(Math.abs((stat?.lastModified.getTime() ?? 0) - Date.now())).toBeLessThan(60_000);
    expect(await objects().stat('stat/none')).toBeNull();
  });

  it('lists with the uploader keys and says so when there are none', async () => {
    const { env } = store();
    const readKeys = { accessKeyId: env.readAccessKeyId, secretAccessKey: env.readSecretAccessKey };
    const readOnly = objects({ uploader: undefined, downloader: readKeys });
    const err = await collect(readOnly.listObjects('list/')).catch((e: unknown) => e);
    expect(isSluiceError(err, 'ERR_INVALID_ARG')).toBe(true);
    expect((err as Error).message).toContain('no uploader credentials');
    const bad = await collect(objects().listObjects('', { pageSize: 0 })).catch((e: unknown) => e);
    expect(isSluiceError(bad, 'ERR_INVALID_ARG')).toBe(true);
  });

  it('stops a listing on abort with ERR_ABORTED', async () => {
    const controller = new AbortController();
    controller.abort();
    const err = await collect(objects().listUploads('', { signal: controller.signal })).catch(
      (e: unknown) => e,
    );
    expect(isSluiceError(err, 'ERR_ABORTED')).toBe(true);
  });
});
