// Drift-tolerant binding through @sluice/core against the real server: a device whose disk was
// replaced still pulls (the envelope opened with the key of its new hash), one that changed two
// factors is refused without leaving a file; the same through pullMany with big parts on a real
// S3 CDN (Ceph RGW), where the CDN config's envelope is the first to meet the drifted device.
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  canonicalHardware,
  factorDigests,
  type HardwareFactor,
  hashCanonicalHardware,
  pull,
  pullMany,
  push,
} from '@sluice/core';
import { describe, expect, it } from 'vitest';
import {
  createUserViaApi,
  DEVICE_USER,
  MiB,
  onCleanup,
  PASSWORD,
  rejection,
  removeDir,
  type StartOptions,
  sha,
  signedIn,
  startForTest,
  tempDir,
  UPLOADER,
} from './apiServer.js';

type Factors = Partial<Record<HardwareFactor, string>>;
const BOX: Factors = {
  'system.uuid': '0b2e6f1c-9d3a-4e57-8c21-6a5f0d4b3e29',
  'board.serial': 'pgfsr0012345678',
  'cpu.model': 'arm cortex-a78ae',
  'cpu.cores': '8',
  'disk.serial': 'nvme-2a41c3',
  'memory.gib': '32',
  'os.machineId': '6f1d2c3b4a5e4f60718293a4b5c6d7e8',
};

/** What the device sends: the hash and digests of `factors`, as hardwareInfo() would. */
const as = (factors: Factors) => ({
  password: PASSWORD,
  hardware: hashCanonicalHardware(canonicalHardware(factors)),
  hardwareFactors: factorDigests(factors),
});

async function world(options: StartOptions = {}) {
  const api = await startForTest({ deviceBinding: { driftCooldownMs: 0 }, ...options });
  const work = await tempDir('sluice-drift-');
  onCleanup(() => removeDir(work));
  await createUserViaApi(api, UPLOADER, 'ResourceUploader');
  await createUserViaApi(api, DEVICE_USER, 'Operator');
  const plain = randomBytes(3 * MiB + 4321);
  const src = join(work, 'model.bin');
  await writeFile(src, plain);
  const uploader = await signedIn(api, UPLOADER);
  await push(uploader, 'models', 'model.bin', src, {
    chunkSize: MiB,
    ...as({ 'cpu.cores': '2', 'cpu.model': 'uploader', 'memory.gib': '4' }),
  });
  const device = await signedIn(api, DEVICE_USER);
  return { api, work, plain, device };
}

describe('a device whose hardware drifted, through pull', () => {
  it('is accepted with one factor changed, refused with two, and nothing is left behind', async () => {
    const { api, work, plain, device } = await world();
    const out = join(work, 'out.bin');
    await pull(device, 'models', 'model.bin', { to: out, ...as(BOX) });
    const newDisk = { ...BOX, 'disk.serial': 'nvme-77f0e9' };
    const to = join(work, 'after-disk.bin');
    await pull(device, 'models', 'model.bin', { to, ...as(newDisk) });
    expect(sha(await readFile(to))).toBe(sha(plain));
    const user = await api.server.store.users.byEmail(DEVICE_USER);
    expect(user?.boundHardwareHash).toBe(as(newDisk).hardware);
    // Board and OS both new: two of seven changed, six would be needed.
    const other = {
      ...newDisk,
      'board.serial': 'pgfsr0099999999',
      'os.machineId': `${'f'.repeat(31)}0`,
    };
    const refused = await rejection(
      pull(device, 'models', 'model.bin', { to: join(work, 'never.bin'), ...as(other) }),
    );
    expect(refused.code).toBe('ERR_DEVICE_NOT_BOUND');
    expect((await readdir(work)).sort()).toEqual(['after-disk.bin', 'model.bin', 'out.bin']);
    // An old client on the moved binding: the new hash alone still matches exactly.
    const { hardwareFactors: _f, ...hashOnly } = as(newDisk);
    await pull(device, 'models', 'model.bin', { to: join(work, 'old-client.bin'), ...hashOnly });
    expect(sha(await readFile(join(work, 'old-client.bin')))).toBe(sha(plain));
  });
});

const env = process.env;
const s3 = env.SLUICE_TEST_S3_ENDPOINT
  ? {
      endpoint: env.SLUICE_TEST_S3_ENDPOINT,
      region: env.SLUICE_TEST_S3_REGION || 'us-east-1',
      rw: {
        accessKeyId: env.SLUICE_TEST_S3_ACCESS_KEY ?? '',
        secretAccessKey: env.SLUICE_TEST_S3_SECRET_KEY ?? '',
      },
    }
  : undefined;

describe.skipIf(s3 === undefined)('a drifted device with big parts on an S3 CDN', () => {
  it('pullMany: the CDN config and the envelopes accept it once, the big parts come from S3', async () => {
    if (s3 === undefined) return;
    const id = randomBytes(4).toString('hex');
    const { S3Objects } = await import('@sluice/cdn');
    const cdnBucket = `sluice-e2e-drift-${id}`;
    const cdn = new S3Objects({ ...s3, bucket: cdnBucket, uploader: s3.rw });
    await cdn.ensureBucket();
    onCleanup(async () => {
      const { S3Client, ListObjectsV2Command, DeleteObjectCommand, DeleteBucketCommand } =
        await import('@aws-sdk/client-s3');
      const client = new S3Client({ ...s3, forcePathStyle: true, credentials: s3.rw });
      const listed = await client.send(new ListObjectsV2Command({ Bucket: cdnBucket }));
      for (const o of listed.Contents ?? []) {
        await client.send(new DeleteObjectCommand({ Bucket: cdnBucket, Key: o.Key }));
      }
      await client.send(new DeleteBucketCommand({ Bucket: cdnBucket })).catch(() => {});
      client.destroy();
    });
    const { api, work, plain, device } = await world({
      storage: { kind: 's3', ...s3, bucket: `sluice-e2e-drift-store-${id}`, credentials: s3.rw },
      cdn: {
        kind: 's3',
        ...s3,
        bucket: cdnBucket,
        prefix: 'drift',
        chunkSize: MiB,
        downloader: s3.rw,
        uploader: s3.rw,
      },
    });
    const requests = (tag: string) => [
      { folder: 'models', name: 'model.bin', to: join(work, `${tag}.bin`) },
    ];
    const [first] = await pullMany(device, requests('first'), as(BOX));
    expect(first?.ok).toBe(true);
    const newUuid = { ...BOX, 'system.uuid': '9e1f0a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b' };
    const before = api.hitCount('GET /resources/models/model.bin/big');
    const [second] = await pullMany(device, requests('second'), as(newUuid));
    expect(second?.ok).toBe(true);
    expect(sha(await readFile(join(work, 'second.bin')))).toBe(sha(plain));
    // The big part came from the S3 CDN, not through the API.
    expect(api.hitCount('GET /resources/models/model.bin/big')).toBe(before);
    expect((await api.server.store.users.byEmail(DEVICE_USER))?.boundHardwareHash).toBe(
      as(newUuid).hardware,
    );
  });
});
