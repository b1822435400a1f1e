import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import {
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { S3Objects } from '@sluice/cdn';
import { deriveEnvelopeKey, envelopeAad, openEnvelope, sealAndSplit } from '@sluice/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3StorageConfig } from '../stores/s3PartStore.js';
import {
  addUser,
  call,
  login,
  PASSWORD,
  removeDir,
  runCleanup,
  type S3TestEnv,
  s3TestEnv,
  startServer,
  tempDir,
  uniqueBucket,
} from '../test-helpers.js';
import { adminClient, deleteBucket, objectKeys } from '../test-s3.js';
import { FileSweepLock } from './fileSweepLock.js';
import { S3PartArea } from './s3PartArea.js';
import { storeSweepSource } from './storeSweep.js';
import { Sweeper, type SweeperOptions } from './sweeper.js';
import { MemorySource } from './testSource.js';

const MiB = 1024 * 1024;
const HW = 'd4'.repeat(32);
// Tiny, so the tests can wait it out; S3 times count as up to 1 s later than they read.
const GRACE_MS = 1500;
const PAST_GRACE_MS = GRACE_MS + 1200;
const env = s3TestEnv();
/** Stands in while the suite is collected but skipped (no S3 env); never contacted. */
const e: S3TestEnv = env ?? {
  endpoint: 'http://127.0.0.1:9',
  region: 'us-east-1',
  accessKeyId: 'unset',
  secretAccessKey: 'unset',
  readAccessKeyId: 'unset',
  readSecretAccessKey: 'unset',
};
const credentials = { accessKeyId: e.accessKeyId, secretAccessKey: e.secretAccessKey };
const bucket = uniqueBucket('sluice-sweep');
const admin = adminClient(e);
const objects = new S3Objects({
  endpoint: e.endpoint,
  region: e.region,
  bucket,
  uploader: credentials,
});
const cleanup: (() => Promise<void>)[] = [];
afterAll(() => runCleanup(cleanup));

const hex = () => randomBytes(16).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function dataDir(): Promise<string> {
  const dir = await tempDir('sluice-sweep-s3-');
  cleanup.push(() => removeDir(dir));
  return dir;
}

async function sweeper(more: Partial<SweeperOptions> = {}): Promise<Sweeper> {
  return new Sweeper({
    source: new MemorySource(),
    lock: new FileSweepLock(await dataDir()),
    parts: [],
    cdn: null,
    graceMs: GRACE_MS,
    ...more,
  });
}

async function openUploads(): Promise<string[]> {
  const out = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (out.Uploads ?? []).map((u) => u.Key ?? '').sort();
}

/** Begins a multipart upload of `key` with one 5 MiB part stored, and leaves it. */
async function abandonUpload(key: string): Promise<void> {
  const begun = await admin.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const UploadId = begun.UploadId;
  const Body = randomBytes(5 * MiB);
  await admin.send(
    new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body }),
  );
}

/**
 * A process that streams an upload to `key` through S3Objects (the built @sluice/cdn), 5 MiB
 * parts, and stalls once the first part is stored: it prints 'part stored' and waits to be killed.
 */
function crashingUpload(key: string): ChildProcess {
  const cdn = pathToFileURL(createRequire(import.meta.url).resolve('@sluice/cdn')).href;
  const code = `
    import { randomBytes } from 'node:crypto';
    import { Readable } from 'node:stream';
    import { S3Objects } from ${JSON.stringify(cdn)};
    const env = process.env;
    const objects = new S3Objects({
      endpoint: env.SLUICE_TEST_S3_ENDPOINT, region: env.SLUICE_TEST_S3_REGION,
      bucket: ${JSON.stringify(bucket)},
      uploader: { accessKeyId: env.SLUICE_TEST_S3_ACCESS_KEY, secretAccessKey: env.SLUICE_TEST_S3_SECRET_KEY },
    });
    let produced = 0;
    const source = new Readable({
      read() { if (produced < 6) { produced++; this.push(randomBytes(1 << 20)); } },
    });
    objects.upload(${JSON.stringify(key)}, source, {
      partSize: 5 << 20,
      onProgress: (p) => { if (p.loaded >= 5 << 20) console.log('part stored'); },
    });
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanup.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

function printed(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    child.stdout?.on('data', (d: Buffer) => {
      seen += String(d);
      if (seen.includes(text)) resolve();
    });
    child.on('exit', (code) => reject(new Error(`child exited (${code}) before '${text}'`)));
  });
}

async function waitFor(done: () => boolean, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await sleep(20);
  }
}

describe.skipIf(env === undefined)('Sweeper on a real Ceph RGW', () => {
  beforeAll(async () => {
    cleanup.push(async () => {
      objects.destroy();
      await deleteBucket(admin, bucket);
      admin.destroy();
    });
    await objects.ensureBucket();
  });

  it('aborts a crashed and an abandoned upload past the grace period; a live one completes', async () => {
    const crashedKey = `srv/parts/${hex()}`;
    const child = crashingUpload(crashedKey);
    await printed(child, 'part stored');
    child.kill('SIGKILL');
    const cdnKey = `cdn/models/m.bin/${hex()}.big`;
    await abandonUpload(cdnKey);
    const foreignKey = `other/${hex()}`;
    await abandonUpload(foreignKey);
    expect(await openUploads()).toEqual([cdnKey, foreignKey, crashedKey].sort());
    await sleep(PAST_GRACE_MS);

    // Begun within the grace period, its first part stored, the rest still to come.
    const liveKey = `srv/parts/${hex()}`;
    const live = new PassThrough();
    let loaded = 0;
    const uploading = objects.upload(liveKey, live, {
      partSize: 5 * MiB,
      onProgress: (p) => {
        loaded = p.loaded;
      },
    });
    const head = randomBytes(6 * MiB);
    live.write(head);
    await waitFor(() => loaded >= 5 * MiB);
    expect(await openUploads()).toContain(liveKey);

    const s = await sweeper({
      parts: [new S3PartArea({ bucket: objects, prefix: 'srv/parts' })],
      cdn: { bucket: objects, prefix: 'cdn' },
    });
    expect(await s.sweep()).toEqual({
      uploadsAborted: 2,
      partsRemoved: 0,
      cdnObjectsRemoved: 0,
      failures: 0,
    });
    // Outside sluice's prefixes: not its to abort.
    expect(await openUploads()).toEqual([foreignKey, liveKey].sort());

    const tail = randomBytes(3 * MiB);
    live.end(tail);
    const done = await uploading;
    expect(done.size).toBe(9 * MiB);
    const body = Buffer.concat(await (await objects.openRead(liveKey)).toArray());
    expect(body.equals(Buffer.concat([head, tail]))).toBe(true);
    expect(await openUploads()).toEqual([foreignKey]);
    expect(s.totals).toMatchObject({ passes: 1, uploadsAborted: 2 });
  });

  it('removes a part no record names and keeps what the server serves', async () => {
    const prefix = 'app/parts';
    const storage: S3StorageConfig = {
      kind: 's3',
      endpoint: e.endpoint,
      region: e.region,
      bucket,
      prefix,
      credentials,
    };
    const s = await startServer({ storage });
    cleanup.push(() => s.close());
    await addUser(s, 'up@example.test', 'ResourceUploader');
    const { accessToken: token } = await login(s.url, 'up@example.test');
    const sealed = await sealFile(await dataDir(), 3 * MiB);
    const body = new FormData();
    body.append('name', 'model.bin');
    body.append('manifest', JSON.stringify(sealed.manifest));
    body.append('dataKey', sealed.dataKey.toString('base64'));
    body.append('small', new Blob([sealed.small]), 'small');
    body.append('big', new Blob([sealed.big]), 'big');
    const up = await fetch(`${s.url}/resources/models`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body,
    });
    expect(up.status).toBe(201);
    // A crash between storing an upload's part and recording it leaves this:
    const orphan = await s.server.storage.commit(
      await s.server.storage.receive(Readable.from([randomBytes(1000)])),
    );
    await sleep(PAST_GRACE_MS);
    // Stored within the grace period, perhaps about to be recorded: kept.
    const young = await s.server.storage.commit(
      await s.server.storage.receive(Readable.from([randomBytes(1000)])),
    );
    const parts = async () =>
      (await objectKeys(admin, bucket)).filter((k) => k.startsWith(`${prefix}/`));
    expect(await parts()).toHaveLength(4);

    const sweep = await sweeper({
      source: storeSweepSource(s.server.store),
      parts: [new S3PartArea({ bucket: objects, prefix })],
    });
    expect(await sweep.sweep()).toEqual({
      uploadsAborted: 0,
      partsRemoved: 1,
      cdnObjectsRemoved: 0,
      failures: 0,
    });
    const left = await parts();
    expect(left).toHaveLength(3);
    expect(left).not.toContain(`${prefix}/${orphan}`);
    expect(left).toContain(`${prefix}/${young}`);

    const envelope = await call(s.url, 'POST', '/resources/get/models', {
      token,
      json: { fileName: 'model.bin', password: PASSWORD, hardware: HW },
    });
    expect(envelope.status).toBe(200);
    const key = await deriveEnvelopeKey('up@example.test', PASSWORD, HW);
    const resource = (envelope.body as { resource: Parameters<typeof envelopeAad>[0] }).resource;
    const payload = openEnvelope(key, envelope.body, envelopeAad(resource));
    expect(payload.small.equals(sealed.small)).toBe(true);
    const big = await fetch(`${s.url}/resources/models/model.bin/big`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(big.status).toBe(200);
    expect(Buffer.from(await big.arrayBuffer()).equals(sealed.big)).toBe(true);
  });

  it('removes the CDN objects left by deleted versions once they are past the grace period', async () => {
    const cdnKeys = { left: '', again: '', untouched: '', gone: '', young: '' };
    for (const name of Object.keys(cdnKeys) as (keyof typeof cdnKeys)[]) {
      cdnKeys[name] = `models/${name}.bin/${hex()}.big`;
    }
    const put = (cdnKey: string) => objects.upload(`fleet/${cdnKey}`, randomBytes(100));
    await put(cdnKeys.left);
    await put(cdnKeys.again);
    await put(cdnKeys.untouched);
    await sleep(PAST_GRACE_MS);
    await put(cdnKeys.young);
    const source = new MemorySource();
    source.pending = [cdnKeys.left, cdnKeys.again, cdnKeys.gone, cdnKeys.young, cdnKeys.left];
    // A deleted version registered anew over its object: the deletion is dropped.
    source.cdnKeys.add(cdnKeys.again);

    const s = await sweeper({ source, cdn: { bucket: objects, prefix: 'fleet' } });
    expect(await s.sweep()).toEqual({
      uploadsAborted: 0,
      partsRemoved: 0,
      cdnObjectsRemoved: 1,
      failures: 0,
    });
    expect(await objects.stat(`fleet/${cdnKeys.left}`)).toBeNull();
    for (const kept of [cdnKeys.again, cdnKeys.untouched, cdnKeys.young]) {
      expect(await objects.stat(`fleet/${kept}`)).not.toBeNull();
    }
    expect(source.marked.sort()).toEqual([cdnKeys.left, cdnKeys.again, cdnKeys.gone].sort());
    expect(source.pending).toEqual([cdnKeys.young]);
  });
});

async function sealFile(dir: string, size: number) {
  const path = join(dir, 'plain');
  await writeFile(path, randomBytes(size));
  const r = await sealAndSplit(path, {
    paths: { small: `${path}.small`, big: `${path}.big` },
    smallSizeKB: 16,
    chunkSize: MiB,
  });
  return {
    small: await readFile(r.smallPath),
    big: await readFile(r.bigPath),
    manifest: r.manifest,
    dataKey: r.key,
  };
}
