import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { S3Objects } from '@sluice/cdn';
import {
  deriveEnvelopeKey,
  envelopeAad,
  type Manifest,
  openBuffer,
  openEnvelope,
  sealAndSplit,
} from '@sluice/core';
import type { S3CdnConfig } from '@sluice/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../app/createServer.js';
import {
  addUser,
  call,
  login,
  PASSWORD,
  type Running,
  removeDir,
  runCleanup,
  type S3TestEnv,
  s3TestEnv,
  startServer,
  TEST_SCRYPT,
  tempDir,
  uniqueBucket,
} from '../test-helpers.js';
import { adminClient, deleteBucket, objectKeys } from '../test-s3.js';
import { BlobStore } from './blobStore.js';
import { S3PartStore, type S3StorageConfig } from './s3PartStore.js';

const MiB = 1024 * 1024;
const HW = 'c3'.repeat(32);
const env = s3TestEnv();

const cleanup: (() => Promise<void>)[] = [];
afterAll(() => runCleanup(cleanup));

/** Stands in while the suites are collected but skipped (no S3 env); never contacted. */
const UNSET: S3TestEnv = {
  endpoint: 'http://127.0.0.1:9',
  region: 'us-east-1',
  accessKeyId: 'unset',
  secretAccessKey: 'unset',
  readAccessKeyId: 'unset',
  readSecretAccessKey: 'unset',
};
const e = env ?? UNSET;

interface Sealed {
  plain: Buffer;
  small: Buffer;
  big: Buffer;
  manifest: Manifest;
  dataKey: Buffer;
}

async function sealRandom(dir: string, size: number, chunkSize: number): Promise<Sealed> {
  const src = join(dir, `plain-${randomBytes(4).toString('hex')}`);
  const plain = randomBytes(size);
  await writeFile(src, plain);
  const r = await sealAndSplit(src, {
    paths: { small: `${src}.small`, big: `${src}.big` },
    smallSizeKB: 16,
    chunkSize,
  });
  return {
    plain,
    small: await readFile(r.smallPath),
    big: await readFile(r.bigPath),
    manifest: r.manifest,
    dataKey: r.key,
  };
}

let work: string;
beforeAll(async () => {
  work = await tempDir('sluice-s3-');
  cleanup.push(() => removeDir(work));
});

describe.skipIf(env === undefined)('S3PartStore on a real Ceph RGW', () => {
  const admin = adminClient(e);
  const bucket = uniqueBucket('sluice-parts');
  const config: S3StorageConfig = {
    kind: 's3',
    endpoint: e.endpoint,
    region: e.region,
    bucket,
    prefix: 'server/parts',
    credentials: { accessKeyId: e.accessKeyId, secretAccessKey: e.secretAccessKey },
  };
  let temp: BlobStore;
  let store: S3PartStore;
  beforeAll(async () => {
    cleanup.push(async () => {
      await deleteBucket(admin, bucket);
      admin.destroy();
    });
    temp = await BlobStore.open(work);
    store = await S3PartStore.open(config, temp);
    cleanup.push(() => store.close());
  });

  it('creates its bucket; commit, read whole or by range, remove; no temp file is left', async () => {
    const bytes = randomBytes(9 * MiB + 123);
    const pending = await store.receive(Readable.from([bytes]));
    const id = await store.commit(pending);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(await objectKeys(admin, bucket)).toEqual([`server/parts/${id}`]);
    expect(await readdir(temp.tempDir)).toEqual([]);

    expect((await store.readAll(id, bytes.length)).equals(bytes)).toBe(true);
    await expect(store.readAll(id, bytes.length - 1)).rejects.toThrow(/over/);
    const range = await store.openRead(id, { start: 5 * MiB - 7, end: 5 * MiB + 100 });
    const chunks: Buffer[] = [];
    for await (const c of range) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(bytes.subarray(5 * MiB - 7, 5 * MiB + 101))).toBe(true);

    await store.remove(id);
    expect(await objectKeys(admin, bucket)).toEqual([]);
    await store.remove(id);
    await expect(store.readAll(id, bytes.length)).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
  });

  it('wrong keys fail at open with an error naming the endpoint, never the secret', async () => {
    const wrongSecret = 'not-the-secret-0123456789abcdef';
    const error = await S3PartStore.open(
      {
        ...config,
        bucket: uniqueBucket('sluice-wrong'),
        credentials: { accessKeyId: e.accessKeyId, secretAccessKey: wrongSecret },
      },
      temp,
    ).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(error?.message).toContain(e.endpoint);
    expect(error?.message).not.toContain(wrongSecret);
    expect(error?.message).not.toContain(e.secretAccessKey);

    // The server refuses to start the same way and releases its data directory.
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    const wrong = {
      ...config,
      credentials: { accessKeyId: e.accessKeyId, secretAccessKey: wrongSecret },
    };
    await expect(createServer({ dataDir, scrypt: TEST_SCRYPT, storage: wrong })).rejects.toThrow(
      e.endpoint,
    );
    const ok = await createServer({ dataDir, scrypt: TEST_SCRYPT, storage: config });
    await ok.close();
  });
});

describe.skipIf(env === undefined)('the server with S3 storage and an S3 CDN', () => {
  const admin = adminClient(e);
  const storageBucket = uniqueBucket('sluice-srv');
  const cdnBucket = uniqueBucket('sluice-cdn');
  const storage: S3StorageConfig = {
    kind: 's3',
    endpoint: e.endpoint,
    region: e.region,
    bucket: storageBucket,
    prefix: 'parts',
    credentials: { accessKeyId: e.accessKeyId, secretAccessKey: e.secretAccessKey },
  };
  const cdn: S3CdnConfig = {
    kind: 's3',
    endpoint: e.endpoint,
    region: e.region,
    bucket: cdnBucket,
    prefix: 'fleet',
    downloader: { accessKeyId: e.readAccessKeyId, secretAccessKey: e.readSecretAccessKey },
    uploader: { accessKeyId: e.accessKeyId, secretAccessKey: e.secretAccessKey },
  };
  /** The client side: puts big parts on the CDN with the uploader keys. */
  const cdnClient = new S3Objects({
    endpoint: e.endpoint,
    region: e.region,
    bucket: cdnBucket,
    uploader: cdn.uploader,
  });
  let s: Running;
  let token: string;
  let sealed: Sealed;
  let viaCdn: Sealed;

  async function start(dataDir?: string) {
    s = await startServer({ storage, cdn, ...(dataDir === undefined ? {} : { dataDir }) });
    cleanup.push(() => s.close());
  }

  beforeAll(async () => {
    cleanup.push(async () => {
      cdnClient.destroy();
      await deleteBucket(admin, storageBucket);
      await deleteBucket(admin, cdnBucket);
      admin.destroy();
    });
    await cdnClient.ensureBucket();
    sealed = await sealRandom(work, 10 * MiB, MiB);
    viaCdn = await sealRandom(work, 300_000, 64 * 1024);
    await start();
    cleanup.push(() => removeDir(s.dataDir));
    await addUser(s, 'up@example.test', 'ResourceUploader');
    token = (await login(s.url, 'up@example.test')).accessToken;
  });

  function form(f: Sealed, name: string, part: { big: true } | { cdnKey: string }): FormData {
    const body = new FormData();
    body.append('name', name);
    body.append('manifest', JSON.stringify(f.manifest));
    body.append('dataKey', f.dataKey.toString('base64'));
    if ('cdnKey' in part) body.append('cdnKey', part.cdnKey);
    body.append('small', new Blob([f.small]), 'small');
    if ('big' in part) body.append('big', new Blob([f.big]), 'big');
    return body;
  }

  async function upload(body: FormData) {
    const res = await fetch(`${s.url}/resources/models`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body,
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  async function envelope(name: string) {
    const r = await call(s.url, 'POST', '/resources/get/models', {
      token,
      json: { fileName: name, password: PASSWORD, hardware: HW },
    });
    expect(r.status).toBe(200);
    const b = r.body as { resource: { folder: string; name: string; version: number } };
    const key = await deriveEnvelopeKey('up@example.test', PASSWORD, HW);
    return openEnvelope(key, r.body, envelopeAad(b.resource));
  }

  async function localBlobs(): Promise<string[]> {
    const dir = join(s.dataDir, 'blobs');
    return [
      ...(await readdir(dir)).filter((n) => n !== '.tmp'),
      ...(await readdir(join(dir, '.tmp'))),
    ];
  }

  it('keeps both parts of an API upload in the bucket and serves them from there', async () => {
    const up = await upload(form(sealed, 'big.bin', { big: true }));
    expect(up).toEqual({ status: 201, body: { folder: 'models', name: 'big.bin', version: 1 } });
    const version = (await s.server.store.resources.get('models', 'big.bin'))?.versions[0];
    expect(await objectKeys(admin, storageBucket)).toEqual(
      [`parts/${version?.smallBlobId}`, `parts/${version?.bigBlobId}`].sort(),
    );
    expect(await localBlobs()).toEqual([]);

    const payload = await envelope('big.bin');
    expect(payload.small.equals(sealed.small)).toBe(true);
    const whole = await fetch(`${s.url}/resources/models/big.bin/big`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(whole.status).toBe(200);
    const big = Buffer.from(await whole.arrayBuffer());
    expect(big.equals(sealed.big)).toBe(true);
    expect(
      openBuffer(Buffer.concat([payload.small, big]), payload.dataKey).equals(sealed.plain),
    ).toBe(true);
    const ranged = await fetch(`${s.url}/resources/models/big.bin/big`, {
      headers: { authorization: `Bearer ${token}`, range: `bytes=${3 * MiB}-${3 * MiB + 99}` },
    });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(
      `bytes ${3 * MiB}-${3 * MiB + 99}/${sealed.big.length}`,
    );
    expect(
      Buffer.from(await ranged.arrayBuffer()).equals(sealed.big.subarray(3 * MiB, 3 * MiB + 100)),
    ).toBe(true);
  });

  it('registers a cdnKey upload only when the CDN holds the object with the manifest size', async () => {
    const before = await objectKeys(admin, storageBucket);
    const missing = await upload(form(viaCdn, 'cdn.bin', { cdnKey: 'models/cdn.bin/v1' }));
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({ code: 'ERR_BAD_REQUEST' });
    expect(String(missing.body.error)).toContain('does not exist on the CDN');

    await cdnClient.upload('fleet/models/cdn.bin/v1', viaCdn.big.subarray(1));
    const short = await upload(form(viaCdn, 'cdn.bin', { cdnKey: 'models/cdn.bin/v1' }));
    expect(short.status).toBe(400);
    expect(String(short.body.error)).toContain(`the manifest says ${viaCdn.manifest.bigSize}`);
    expect(await s.server.store.resources.get('models', 'cdn.bin')).toBeUndefined();
    expect(await objectKeys(admin, storageBucket)).toEqual(before);
    expect(await localBlobs()).toEqual([]);

    await cdnClient.upload('fleet/models/cdn.bin/v1', viaCdn.big);
    const ok = await upload(form(viaCdn, 'cdn.bin', { cdnKey: 'models/cdn.bin/v1' }));
    expect(ok).toEqual({ status: 201, body: { folder: 'models', name: 'cdn.bin', version: 1 } });
    const payload = await envelope('cdn.bin');
    expect(payload.small.equals(viaCdn.small)).toBe(true);
    const list = await call(s.url, 'GET', '/resources/models', { token });
    expect(list.body).toMatchObject({
      resources: [
        { name: 'big.bin', bigStored: true },
        { name: 'cdn.bin', bigStored: false },
      ],
    });
    const big = await fetch(`${s.url}/resources/models/cdn.bin/big`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(big.status).toBe(404);
  });

  it('refuses a cdnKey another resource holds (deleting that one would remove it)', async () => {
    const r = await upload(form(viaCdn, 'thief.bin', { cdnKey: 'models/cdn.bin/v1' }));
    expect(r.status).toBe(409);
    expect(r.body).toMatchObject({ code: 'ERR_CONFLICT' });
    expect(await s.server.store.resources.get('models', 'thief.bin')).toBeUndefined();
  });

  it('still serves after a restart on the same data directory', async () => {
    const dataDir = s.dataDir;
    await s.close();
    await start(dataDir);
    token = (await login(s.url, 'up@example.test')).accessToken;
    expect((await envelope('cdn.bin')).small.equals(viaCdn.small)).toBe(true);
    expect((await envelope('big.bin')).small.equals(sealed.small)).toBe(true);
  });

  it('close() lets a download streaming from the bucket finish before it releases the store', async () => {
    const url = new URL(s.url);
    const { res, first } = await new Promise<{ res: IncomingMessage; first: Buffer }>(
      (resolve, reject) => {
        httpRequest(
          {
            host: url.hostname,
            port: url.port,
            path: '/resources/models/big.bin/big',
            headers: { authorization: `Bearer ${token}` },
            agent: false,
          },
          (r) => {
            r.once('data', (chunk: Buffer) => {
              r.pause();
              resolve({ res: r, first: chunk });
            });
          },
        )
          .on('error', reject)
          .end();
      },
    );
    const dataDir = s.dataDir;
    const closing = s.close();
    await new Promise((r) => setTimeout(r, 200));
    const body = await new Promise<Buffer>((resolve, reject) => {
      const chunks = [first];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
      res.resume();
    });
    await closing;
    expect(body.equals(sealed.big)).toBe(true);
    await start(dataDir);
    token = (await login(s.url, 'up@example.test')).accessToken;
  });

  it('delete removes the parts from the bucket and the big part from the CDN', async () => {
    const cdnVersion = (await s.server.store.resources.get('models', 'cdn.bin'))?.versions[0];
    expect(await cdnClient.exists('fleet/models/cdn.bin/v1')).not.toBeNull();
    const del = await call(s.url, 'DELETE', '/resources/models/cdn.bin', { token });
    expect(del.status).toBe(204);
    expect(await cdnClient.exists('fleet/models/cdn.bin/v1')).toBeNull();
    expect(await objectKeys(admin, storageBucket)).not.toContain(
      `parts/${cdnVersion?.smallBlobId}`,
    );
    expect((await call(s.url, 'DELETE', '/resources/models/big.bin', { token })).status).toBe(204);
    expect(await objectKeys(admin, storageBucket)).toEqual([]);
  });
});
