import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { inspect } from 'node:util';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
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
import type { S3RequestInfo } from './s3Client.js';
import { S3Downloader } from './s3Downloader.js';
import { S3Objects } from './s3Objects.js';

const env = s3TestEnv();
const bucket = uniqueBucket('sluice-cdn');
const tmpDirs: string[] = [];
const opened: { destroy(): void }[] = [];
const admin = env ? adminClient(env) : undefined;

afterAll(async () => {
  for (const o of opened.splice(0)) o.destroy();
  if (admin) {
    await deleteBucket(admin, bucket);
    admin.destroy();
  }
  for (const d of tmpDirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** The store; the suite is skipped without it, so this never throws inside a test. */
function store(): { env: S3TestEnv; admin: S3Client } {
  if (!env || !admin) throw new Error('S3 tests run only with SLUICE_TEST_S3_* set');
  return { env, admin };
}

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'sluice-cdn-s3-'));
  tmpDirs.push(d);
  return d;
}

/** Objects and a downloader on the test bucket; `requests` records every S3 attempt they make. */
function s3(overrides: { settings?: object; options?: object } = {}) {
  const { env } = store();
  const requests: S3RequestInfo[] = [];
  const settings = { ...testSettings(env, bucket), ...overrides.settings };
  const options = {
    backoffMs: 20,
    maxBackoffMs: 200,
    onRequest: (r: S3RequestInfo) => requests.push(r),
    ...overrides.options,
  };
  const objects = new S3Objects(settings, options);
  const downloader = new S3Downloader(settings, options);
  opened.push(objects, downloader);
  const gets = () => requests.filter((r) => r.command === 'GetObjectCommand');
  return { objects, downloader, requests, gets };
}

async function put(key: string, body: Buffer): Promise<void> {
  await store().admin.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

/** Downloads into a buffer; returns it and the chunk indexes in arrival order. */
async function fetchAll(
  downloader: S3Downloader,
  key: string,
  size: number,
  chunkSize: number,
  concurrency = 4,
) {
  const out = Buffer.alloc(size);
  const order: number[] = [];
  await downloader.download({
    url: key,
    size,
    chunkSize,
    concurrency,
    onChunk: async (index, data) => {
      order.push(index);
      data.copy(out, index * chunkSize);
    },
  });
  return { out, order };
}

describe.skipIf(!env)('S3Objects and S3Downloader on Ceph RGW', () => {
  beforeAll(async () => {
    await s3().objects.ensureBucket();
  });

  it('round-trips 1 GiB: multipart upload from a file, parallel ranged download, same SHA-256', async () => {
    const dir = await tempDir();
    const src = join(dir, 'big.bin');
    const size = 1024 * 1024 * 1024;
    const piece = 8 * 1024 * 1024;
    const hashIn = createHash('sha256');
    const fh = await open(src, 'w');
    for (let off = 0; off < size; off += piece) {
      const data = randomBytes(piece);
      hashIn.update(data);
      await fh.write(data, 0, piece, off);
    }
    await fh.close();
    const { objects, downloader, requests } = s3();
    const progress: number[] = [];
    const up = await objects.upload('big/one-gib.bin', src, {
      partSize: 16 * 1024 * 1024,
      onProgress: (p) => progress.push(p.loaded),
    });
    expect(up.size).toBe(size);
    expect(up.etag).toMatch(/^".+-64"$/); // a multipart ETag, taken from HeadObject
    expect(progress.at(-1)).toBe(size);
    expect(requests.filter((r) => r.command === 'UploadPartCommand').length).toBe(64);
    await rm(src);

    const dst = join(dir, 'big.out');
    const out = await open(dst, 'w');
    let inFlight = 0;
    let maxInFlight = 0;
    let lastProgress = 0;
    await downloader.download({
      url: 'big/one-gib.bin',
      size,
      chunkSize: 8 * 1024 * 1024,
      concurrency: 8,
      onChunk: async (index, data) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await out.write(data, 0, data.length, index * 8 * 1024 * 1024);
        inFlight--;
      },
      onProgress: (p) => {
        lastProgress = p.loaded;
      },
    });
    await out.close();
    expect(lastProgress).toBe(size);
    expect(maxInFlight).toBeLessThanOrEqual(8);
    const hashOut = createHash('sha256');
    for await (const chunk of createReadStream(dst)) hashOut.update(chunk as Buffer);
    expect(hashOut.digest('hex')).toBe(hashIn.digest('hex'));
    await rm(dst);
    await objects.remove('big/one-gib.bin');
  });

  it('downloads a many-chunk object with the read-only keys, one GET per chunk', async () => {
    const data = randomBytes(1024 * 1024 + 3);
    await put('small/many.bin', data);
    const { downloader, gets } = s3();
    const { out, order } = await fetchAll(downloader, 'small/many.bin', data.length, 4096, 8);
    expect(out.equals(data)).toBe(true);
    expect(order).toHaveLength(257);
    expect(new Set(order).size).toBe(257);
    expect(gets()).toHaveLength(257);
    expect(gets().every((r) => r.range?.startsWith('bytes='))).toBe(true);
  });

  it('downloads empty and one-byte objects', async () => {
    await put('small/empty.bin', Buffer.alloc(0));
    await put('small/one.bin', Buffer.from([42]));
    const { downloader } = s3();
    expect((await fetchAll(downloader, 'small/empty.bin', 0, 1024)).order).toEqual([]);
    const one = await fetchAll(downloader, 'small/one.bin', 1, 1024);
    expect([...one.out]).toEqual([42]);
  });

  it('resumes an aborted download, fetching only the chunks it did not deliver', async () => {
    const chunkSize = 64 * 1024;
    const data = randomBytes(64 * chunkSize);
    await put('resume/obj.bin', data);
    const dir = await tempDir();
    const resumeFile = join(dir, 'obj.resume');
    const outFile = join(dir, 'obj.out');
    await writeFile(outFile, Buffer.alloc(0));
    const fh = await open(outFile, 'r+');
    const first = s3();
    const controller = new AbortController();
    const delivered1: number[] = [];
    const err = await first.downloader
      .download({
        url: 'resume/obj.bin',
        size: data.length,
        chunkSize,
        concurrency: 4,
        resumeFile,
        signal: controller.signal,
        onChunk: async (index, chunk) => {
          await fh.write(chunk, 0, chunk.length, index * chunkSize);
          delivered1.push(index);
          if (delivered1.length === 30) controller.abort();
        },
      })
      .catch((e: unknown) => e);
    expect(isSluiceError(err, 'ERR_ABORTED')).toBe(true);
    const state = JSON.parse(await readFile(resumeFile, 'utf8')) as { done: number[] };
    expect(state.done.sort((a, b) => a - b)).toEqual([...delivered1].sort((a, b) => a - b));

    const second = s3();
    const delivered2: number[] = [];
    await second.downloader.download({
      url: 'resume/obj.bin',
      size: data.length,
      chunkSize,
      concurrency: 4,
      resumeFile,
      onChunk: async (index, chunk) => {
        await fh.write(chunk, 0, chunk.length, index * chunkSize);
        delivered2.push(index);
      },
    });
    await fh.close();
    expect(delivered2.filter((i) => delivered1.includes(i))).toEqual([]);
    expect(delivered1.length + delivered2.length).toBe(64);
    expect(second.gets()).toHaveLength(64 - delivered1.length);
    expect((await readFile(outFile)).equals(data)).toBe(true);
    await expect(stat(resumeFile)).rejects.toThrow(/ENOENT/);
  });

  it('resumes from the state a crash would leave (the last batch written mid-download)', async () => {
    const chunkSize = 16 * 1024;
    const data = randomBytes(96 * chunkSize);
    await put('resume/crash.bin', data);
    const dir = await tempDir();
    const resumeFile = join(dir, 'crash.resume');
    const crashed = join(dir, 'crash.snapshot');
    const out = Buffer.alloc(data.length);
    const delivered: number[] = [];
    await s3().downloader.download({
      url: 'resume/crash.bin',
      size: data.length,
      chunkSize,
      concurrency: 4,
      resumeFile,
      onChunk: async (index, chunk) => {
        chunk.copy(out, index * chunkSize);
        delivered.push(index);
        // what is on disk at this moment is all a killed process would leave behind
        if (delivered.length === 50) await copyFile(resumeFile, crashed).catch(() => {});
      },
    });
    const snapshot = JSON.parse(await readFile(crashed, 'utf8')) as { done: number[] };
    expect(snapshot.done.length).toBeGreaterThan(0);
    expect(snapshot.done.length).toBeLessThanOrEqual(50);
    expect(snapshot.done.every((i) => delivered.slice(0, 50).includes(i))).toBe(true);

    // the restarted process: the output holds the recorded chunks only
    const restarted = Buffer.alloc(data.length);
    for (const i of snapshot.done)
      out.copy(restarted, i * chunkSize, i * chunkSize, (i + 1) * chunkSize);
    await copyFile(crashed, resumeFile);
    const second = s3();
    await second.downloader.download({
      url: 'resume/crash.bin',
      size: data.length,
      chunkSize,
      concurrency: 4,
      resumeFile,
      onChunk: async (index, chunk) => {
        chunk.copy(restarted, index * chunkSize);
      },
    });
    expect(restarted.equals(data)).toBe(true);
    expect(second.gets()).toHaveLength(96 - snapshot.done.length);
  });

  it('ignores a resume file of another version of the object', async () => {
    const chunkSize = 64 * 1024;
    const data = randomBytes(8 * chunkSize);
    await put('resume/other.bin', data);
    const dir = await tempDir();
    const resumeFile = join(dir, 'other.resume');
    const { objects, downloader, gets } = s3();
    const head = await objects.exists('resume/other.bin');
    await writeFile(
      resumeFile,
      JSON.stringify({
        version: 1,
        source: `${store().env.endpoint}/${bucket}/resume/other.bin`,
        etag: '"an-older-version"',
        size: data.length,
        chunkSize,
        done: [0, 1, 2, 3],
      }),
    );
    expect(head?.etag).not.toBe('"an-older-version"');
    const out = Buffer.alloc(data.length);
    await downloader.download({
      url: 'resume/other.bin',
      size: data.length,
      chunkSize,
      resumeFile,
      onChunk: async (index, chunk) => {
        chunk.copy(out, index * chunkSize);
      },
    });
    expect(out.equals(data)).toBe(true);
    expect(gets()).toHaveLength(8);
  });

  it('fails with ERR_SOURCE_CHANGED when the object is replaced during the download', async () => {
    const chunkSize = 64 * 1024;
    await put('changing.bin', randomBytes(32 * chunkSize));
    const { downloader } = s3();
    let seen = 0;
    const err = await downloader
      .download({
        url: 'changing.bin',
        size: 32 * chunkSize,
        chunkSize,
        concurrency: 2,
        onChunk: async () => {
          if (++seen === 3) await put('changing.bin', randomBytes(32 * chunkSize));
        },
      })
      .catch((e: unknown) => e);
    expect(isSluiceError(err, 'ERR_SOURCE_CHANGED')).toBe(true);
    expect(seen).toBeLessThan(32);
  });

  it('fails with ERR_SOURCE_CHANGED when the object is not the expected size', async () => {
    await put('sized.bin', randomBytes(10_000));
    const { downloader } = s3();
    const err = await fetchAll(downloader, 'sized.bin', 20_000, 4096).catch((e: unknown) => e);
    expect(isSluiceError(err, 'ERR_SOURCE_CHANGED')).toBe(true);
  });

  it('stops a download promptly on abort, cancelling the GETs in flight', async () => {
    const chunkSize = 1024 * 1024;
    await put('abort.bin', randomBytes(32 * chunkSize));
    const { downloader } = s3();
    const controller = new AbortController();
    let chunks = 0;
    let afterAbort = 0;
    const started = Date.now();
    const err = await downloader
      .download({
        url: 'abort.bin',
        size: 32 * chunkSize,
        chunkSize,
        concurrency: 2,
        signal: controller.signal,
        onChunk: async () => {
          if (controller.signal.aborted) afterAbort++;
          if (++chunks === 2) controller.abort();
        },
      })
      .catch((e: unknown) => e);
    expect(isSluiceError(err, 'ERR_ABORTED')).toBe(true);
    expect(afterAbort).toBe(0);
    expect(chunks).toBeLessThan(32);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('reports wrong keys with the endpoint and bucket, never the secret', async () => {
    const { env } = store();
    const secret = `wrong-${randomBytes(16).toString('hex')}`;
    const { objects, downloader, requests } = s3({
      settings: {
        downloader: { accessKeyId: env.readAccessKeyId, secretAccessKey: secret },
        uploader: { accessKeyId: 'SLUICENOSUCHKEY00000', secretAccessKey: secret },
      },
    });
    const errors = [
      await objects.exists('small/many.bin').catch((e: unknown) => e),
      await fetchAll(downloader, 'small/many.bin', 1024 * 1024 + 3, 65536).catch((e: unknown) => e),
      await objects.upload('denied.bin', randomBytes(1000)).catch((e: unknown) => e),
    ];
    for (const e of errors) {
      expect(isSluiceError(e, 'ERR_ACCESS_DENIED')).toBe(true);
      const err = e as Error;
      expect(err.message).toContain(env.endpoint);
      expect(err.message).toContain(bucket);
      for (const text of [
        err.message,
        err.stack,
        JSON.stringify(err),
        inspect(err, { depth: 8 }),
      ]) {
        expect(text).not.toContain(secret);
      }
    }
    expect((errors[0] as Error).message).toContain('downloader');
    expect((errors[2] as Error).message).toContain('uploader');
    // a refusal is not retried chunk by chunk
    expect(requests.filter((r) => r.command === 'GetObjectCommand').length).toBeLessThanOrEqual(8);
  });

  it('refuses writes with the read-only keys', async () => {
    const { env } = store();
    const readKeys = { accessKeyId: env.readAccessKeyId, secretAccessKey: env.readSecretAccessKey };
    const { objects } = s3({ settings: { uploader: readKeys, downloader: readKeys } });
    const err = await objects.upload('read-only.bin', randomBytes(100)).catch((e: unknown) => e);
    expect(isSluiceError(err, 'ERR_ACCESS_DENIED')).toBe(true);
    expect(await s3().objects.exists('read-only.bin')).toBeNull();
  });

  it('leaves no incomplete multipart upload behind when an upload is aborted', async () => {
    const { objects, requests } = s3();
    const controller = new AbortController();
    let produced = 0;
    const source = new Readable({
      read() {
        // 64 MiB, produced slowly so the abort lands mid-upload
        if (produced >= 64 * 1024 * 1024) return this.push(null);
        produced += 1024 * 1024;
        setTimeout(() => this.push(randomBytes(1024 * 1024)), 5);
      },
    });
    const started = Date.now();
    const err = await objects
      .upload('aborted.bin', source, {
        partSize: 5 * 1024 * 1024,
        signal: controller.signal,
        onProgress: (p) => {
          if (p.loaded >= 10 * 1024 * 1024) controller.abort();
        },
      })
      .catch((e: unknown) => e);
    expect(isSluiceError(err, 'ERR_ABORTED')).toBe(true);
    expect(produced).toBeLessThan(64 * 1024 * 1024);
    const commands = requests.map((r) => r.command);
    expect(commands).toContain('CreateMultipartUploadCommand');
    expect(commands).toContain('AbortMultipartUploadCommand');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await openMultipartUploads(store().admin, bucket)).toEqual([]);
    expect(await objects.exists('aborted.bin')).toBeNull();
  });

  it('leaves no incomplete multipart upload behind when the source fails', async () => {
    const { objects, requests } = s3();
    let produced = 0;
    const source = new Readable({
      read() {
        if (produced >= 12 * 1024 * 1024) {
          this.destroy(new Error('disk went away'));
          return;
        }
        produced += 1024 * 1024;
        this.push(randomBytes(1024 * 1024));
      },
    });
    const err = await objects
      .upload('failed.bin', source, { partSize: 5 * 1024 * 1024 })
      .catch((e: unknown) => e);
    expect(isSluiceError(err, 'ERR_IO')).toBe(true);
    expect((err as Error).message).toContain('disk went away');
    expect(requests.map((r) => r.command)).toContain('AbortMultipartUploadCommand');
    expect(await openMultipartUploads(store().admin, bucket)).toEqual([]);
    expect(await objects.exists('failed.bin')).toBeNull();
  });

  it('uploads a buffer and a stream, reports size and ETag, opens ranges, removes', async () => {
    const { objects } = s3();
    const data = randomBytes(300_000);
    const a = await objects.upload('ops/buffer.bin', data);
    expect(a).toEqual({ key: 'ops/buffer.bin', size: data.length, etag: expect.any(String) });
    expect(await objects.exists('ops/buffer.bin')).toEqual({ size: data.length, etag: a.etag });
    const b = await objects.upload('ops/stream.bin', Readable.from([data.subarray(0, 1000)]));
    expect(b.size).toBe(1000);

    const range = await objects.openRead('ops/buffer.bin', { range: { start: 1000, end: 1999 } });
    const parts: Buffer[] = [];
    for await (const p of range) parts.push(p as Buffer);
    expect(Buffer.concat(parts).equals(data.subarray(1000, 2000))).toBe(true);

    await objects.remove('ops/buffer.bin');
    expect(await objects.exists('ops/buffer.bin')).toBeNull();
    await objects.remove('ops/buffer.bin'); // already gone: fine
  });

  it('reports a missing object as ERR_NOT_FOUND (or null from exists)', async () => {
    const { objects, downloader } = s3();
    expect(await objects.exists('nope.bin')).toBeNull();
    const errors = [
      await objects.openRead('nope.bin').catch((e: unknown) => e),
      await fetchAll(downloader, 'nope.bin', 10, 4).catch((e: unknown) => e),
      await downloader
        .download({
          url: 'nope.bin',
          size: 10,
          chunkSize: 4,
          resumeFile: join(await tempDir(), 'r'),
          onChunk: async () => {},
        })
        .catch((e: unknown) => e),
    ];
    for (const e of errors) {
      expect(isSluiceError(e, 'ERR_NOT_FOUND')).toBe(true);
      expect((e as Error).message).toContain('nope.bin');
    }
  });

  it('ping resolves for the bucket, names a missing one, and refuses wrong keys without the secret', async () => {
    const { env } = store();
    await s3().objects.ping();
    const missing = uniqueBucket('sluice-cdn-none');
    const gone = new S3Objects(testSettings(env, missing));
    opened.push(gone);
    const notFound = await gone.ping().catch((e: unknown) => e);
    expect(isSluiceError(notFound, 'ERR_NOT_FOUND')).toBe(true);
    expect((notFound as Error).message).toContain(missing);
    const secret = `wrong-${randomBytes(16).toString('hex')}`;
    const { objects } = s3({
      settings: { downloader: { accessKeyId: env.readAccessKeyId, secretAccessKey: secret } },
    });
    const denied = await objects.ping().catch((e: unknown) => e);
    expect(isSluiceError(denied, 'ERR_ACCESS_DENIED')).toBe(true);
    expect(inspect(denied, { depth: 8 })).not.toContain(secret);
    const aborted = await objects.ping({ signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(isSluiceError(aborted, 'ERR_ABORTED')).toBe(true);
  });

  it('ensureBucket is idempotent and creates a missing bucket', async () => {
    const { env, admin } = store();
    const other = uniqueBucket('sluice-cdn-eb');
    const objects = new S3Objects(testSettings(env, other));
    opened.push(objects);
    try {
      await objects.ensureBucket();
      await objects.ensureBucket();
      await objects.upload('x', Buffer.from('x'));
      expect(await objects.exists('x')).toEqual({ size: 1, etag: expect.any(String) });
    } finally {
      await deleteBucket(admin, other);
    }
  });
});
