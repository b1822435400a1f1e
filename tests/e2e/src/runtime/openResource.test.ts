// Into a runtime without a file: a small ONNX model that the test builds itself is pushed to the
// real server on loopback (and once with its big part on the S3 CDN, a real Ceph RGW), opened
// with openResource and run by onnxruntime-node straight from the Buffer; no file holding the
// plaintext appears anywhere a pull could write (temp dirs, the cache, the server's data dir,
// the working directory, os.tmpdir()), and close() wipes it.
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import {
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { S3Objects } from '@sluice/cdn';
import { isSluiceError, type OpenedResource, openResource, push, type Session } from '@sluice/core';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import {
  type ApiServer,
  createUserViaApi,
  DEVICE_USER,
  onCleanup,
  PASSWORD,
  removeDir,
  type StartOptions,
  sha,
  signedIn,
  startForTest,
  tempDir,
  UPLOADER,
} from '../apiServer.js';
import { sharedS3 } from '../faults/s3World.js';
import { type AffineModel, affine, affineModel, randomFloats } from './onnxModel.js';
import { filesHolding, type ScanRoot } from './plaintextScan.js';

const HW = sha('runtime device');
const CHUNK = 256 * 1024;
const NAME = 'affine.onnx';
const s3 = sharedS3();

interface World {
  api: ApiServer;
  work: string;
  cacheDir: string;
  model: AffineModel;
  device: Session;
  /** Windows of the plaintext: one in the small part's range, one in the big part's. */
  needles: Buffer[];
}

/**
 * A server with a 768×1024 affine model (3 MiB of weights: a small part of about 0.9 MiB and a
 * big part of about 2.1 MiB in 256 KiB chunks) pushed from memory.
 */
async function world(options: StartOptions = {}, pushOptions = {}): Promise<World> {
  const api = await startForTest(options);
  const work = await tempDir('sluice-runtime-');
  onCleanup(() => removeDir(work));
  await createUserViaApi(api, UPLOADER, 'ResourceUploader');
  await createUserViaApi(api, DEVICE_USER, 'Operator');
  const model = affineModel(768, 1024);
  const uploader = await signedIn(api, UPLOADER);
  // Bytes pushed from memory are spooled here while they are sent, and removed after.
  const spool = join(work, 'push-spool');
  await mkdir(spool);
  await push(uploader, 'models', NAME, model.bytes, {
    chunkSize: CHUNK,
    tempDir: spool,
    ...pushOptions,
  });
  expect(await readdir(spool)).toEqual([]);
  const at = (fraction: number) => {
    const start = Math.floor(model.bytes.length * fraction);
    return model.bytes.subarray(start, start + 48);
  };
  const device = await signedIn(api, DEVICE_USER);
  return { api, work, cacheDir: join(work, 'cache'), model, device, needles: [at(0.1), at(0.9)] };
}

/** Everything this process could have written plaintext to; shared roots only since `sinceMs`. */
function roots(w: World, sinceMs: number): ScanRoot[] {
  return [
    { dir: w.work },
    { dir: w.api.dataDir },
    { dir: tmpdir(), sinceMs },
    { dir: process.cwd(), sinceMs },
    { dir: '/dev/shm', sinceMs },
  ];
}

/** Runs the model on a random input and checks every output against the float64 reference. */
async function expectInference(w: World, bytes: Buffer): Promise<void> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const x = randomFloats(w.model.k);
    const out = await session.run({ X: new ort.Tensor('float32', x, [1, w.model.k]) });
    const y = out.Y;
    expect(y?.dims).toEqual([1, w.model.n]);
    const want = affine(w.model, x);
    const got = y?.data as Float32Array;
    let worst = 0;
    for (let j = 0; j < w.model.n; j++)
      worst = Math.max(worst, Math.abs((got[j] as number) - (want[j] as number)));
    expect(worst).toBeLessThan(1e-3);
    // Not a constant: the outputs spread like a sum of 768 products of uniform numbers.
    expect(new Set(Array.from(got, (v) => v.toFixed(2))).size).toBeGreaterThan(w.model.n / 4);
  } finally {
    await session.release();
  }
}

function open(w: World, cacheDir?: string): Promise<OpenedResource> {
  return openResource(w.device, 'models', NAME, { password: PASSWORD, hardware: HW, cacheDir });
}

/** The whole open → infer → close path, with the disk searched for the plaintext around it. */
async function openAndInfer(w: World): Promise<OpenedResource> {
  // The scan finds the plaintext where it is (so an empty result below means something).
  const control = join(w.work, 'control.onnx');
  await writeFile(control, w.model.bytes);
  expect(await filesHolding(w.needles, [{ dir: w.work }])).toEqual([control]);
  await rm(control);

  const since = Date.now() - 2000;
  expect(await filesHolding(w.needles, roots(w, since))).toEqual([]);
  const handle = await open(w, w.cacheDir);
  expect(handle.size).toBe(w.model.bytes.length);
  expect(sha(handle.data)).toBe(sha(w.model.bytes));
  await expectInference(w, handle.data);
  // The cache holds the big part, still encrypted.
  expect((await readdir(w.cacheDir)).filter((n) => n.endsWith('.big'))).toHaveLength(1);
  expect(await filesHolding(w.needles, roots(w, since))).toEqual([]);
  return handle;
}

describe('openResource: a model straight into onnxruntime-node', () => {
  it('from the API: verified, inferred from the Buffer, no plaintext file, wiped on close()', async () => {
    const w = await world();
    const handle = await openAndInfer(w);
    expect(handle.fromCache).toBe(false);
    expect(w.api.hitCount(`GET /resources/models/${NAME}/big`)).toBeGreaterThan(0);

    const data = handle.data;
    const reading = handle.stream({ highWaterMark: 64 * 1024 });
    const streamed = await new Promise<Buffer>((resolve, reject) => {
      const parts: Buffer[] = [];
      reading.on('data', (p: Buffer) => parts.push(Buffer.from(p)));
      reading.on('end', () => resolve(Buffer.concat(parts)));
      reading.on('error', reject);
    });
    expect(sha(streamed)).toBe(sha(w.model.bytes));
    const pending = handle.stream();
    const ended = new Promise<unknown>((resolve) => pending.on('error', resolve));

    handle.close();
    handle.close(); // idempotent
    expect(handle.closed).toBe(true);
    expect(data.every((b) => b === 0)).toBe(true);
    const err = (await ended) as Error;
    expect(isSluiceError(err) && err.code).toBe('ERR_RESOURCE_CLOSED');
    for (const use of [() => handle.data, () => handle.stream()]) {
      expect(use).toThrow(expect.objectContaining({ code: 'ERR_RESOURCE_CLOSED' }));
    }
  });

  it('again from the cache (ciphertext only), closed by Symbol.asyncDispose', async () => {
    const w = await world();
    (await openAndInfer(w)).close();
    const since = Date.now() - 2000;
    const again = await open(w, w.cacheDir);
    const data = again.data;
    expect(again.fromCache).toBe(true);
    expect(sha(data)).toBe(sha(w.model.bytes));
    expect(await text(again.stream()).then((s) => s.length)).toBeGreaterThan(0);
    await again[Symbol.asyncDispose]();
    expect(data.every((b) => b === 0)).toBe(true);
    expect(() => again.data).toThrow(/closed/);
    expect(await filesHolding(w.needles, roots(w, since))).toEqual([]);
  });

  it('a resource that does not exist is a typed error, and nothing is left open', async () => {
    const w = await world();
    const err = await openResource(w.device, 'models', 'nope.onnx', {
      password: PASSWORD,
      hardware: HW,
    }).catch((e: unknown) => e);
    expect(isSluiceError(err) && err.code).toBe('ERR_NOT_FOUND');
    await expect(
      openResource(w.device, 'models', NAME, { password: 'wrong', hardware: HW }),
    ).rejects.toMatchObject({ name: 'SluiceError' });
  });
});

/** Empties and removes the test's buckets. */
async function dropBuckets(buckets: string[]): Promise<void> {
  if (!s3) return;
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: s3.rw,
  });
  try {
    for (const Bucket of buckets) {
      const listed = await client.send(new ListObjectsV2Command({ Bucket })).catch(() => undefined);
      for (const o of listed?.Contents ?? []) {
        await client.send(new DeleteObjectCommand({ Bucket, Key: o.Key }));
      }
      await client.send(new DeleteBucketCommand({ Bucket })).catch(() => {});
    }
  } finally {
    client.destroy();
  }
}

describe.skipIf(!s3)('openResource with the big part on the S3 CDN (Ceph RGW)', () => {
  it('the big part comes from the bucket, never through the API; inference and no plaintext file as above', async () => {
    if (!s3) return;
    const id = sha(String(Math.random())).slice(0, 8);
    const bucket = `sluice-runtime-cdn-${id}`;
    const admin = new S3Objects({
      endpoint: s3.endpoint,
      region: s3.region,
      bucket,
      uploader: s3.rw,
    });
    await admin.ensureBucket();
    const w = await world(
      {
        storage: {
          kind: 's3',
          endpoint: s3.endpoint,
          region: s3.region,
          bucket: `sluice-runtime-store-${id}`,
          credentials: s3.rw,
        },
        cdn: {
          kind: 's3',
          endpoint: s3.endpoint,
          region: s3.region,
          bucket,
          prefix: 'cdn',
          chunkSize: CHUNK,
          downloader: s3.read,
          uploader: s3.rw,
        },
      },
      { password: PASSWORD, hardware: sha('uploader box') },
    );
    onCleanup(() => dropBuckets([bucket, `sluice-runtime-store-${id}`]));
    const handle = await openAndInfer(w);
    handle.close();
    expect(w.api.hitCount(`GET /resources/models/${NAME}/big`)).toBe(0);
    expect(w.api.hitCount('POST /cdn-config')).toBeGreaterThanOrEqual(2);
  });
});
