// Faults between a device and the S3 CDN (a real Ceph RGW behind a FaultProxy): connections cut
// mid-chunk, 503/500 storms, an object truncated or replaced during the pull.
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import {
  CHUNK,
  entries,
  expectServes,
  expectVerified,
  gate,
  pullModel,
  rejection,
} from './faultWorld.js';
import { cdnGets, putObject, s3World, sharedS3 } from './s3World.js';

const s3 = sharedS3();
if (!s3)
  console.warn('S3 fault tests skipped: source /work/notes/ceph.env or set SLUICE_TEST_S3_*');

describe.skipIf(!s3)('faults between the client and the S3 CDN (Ceph RGW)', () => {
  const env = s3 as NonNullable<typeof s3>;

  it('radosgw connection reset in the middle of a chunk: fetched again, the file verifies', async () => {
    const w = await s3World(env);
    let cut = 0;
    w.cdnProxy.rule = (r) =>
      r.range === `bytes=${CHUNK}-${2 * CHUNK - 1}` && cut++ === 0
        ? { kind: 'reset', afterBytes: 64 * 1024 }
        : undefined;
    const out = join(w.work, 'out.bin');
    await pullModel(w.device, out);
    await expectVerified(out, w.plain);
    const second = cdnGets(w).filter((e) => e.range === `bytes=${CHUNK}-${2 * CHUNK - 1}`);
    expect(second.map((e) => [e.action, e.responseBytes])).toEqual([
      ['reset', 64 * 1024],
      ['pass', CHUNK],
    ]);
    expect(await entries(w.work)).toEqual(['out.bin', 'src.bin']);
    await expectServes(w.api, w.plain);
  });

  it('a 503/500 storm at radosgw: the SDK and the chunk retries back off, the file verifies', async () => {
    const w = await s3World(env);
    // Each range fails 4 times (503, 500, 503, 500): more than the SDK's 3 attempts, so every
    // range also needs one retry of the chunk download, after its own backoff (≥ 100 ms).
    const tries = new Map<string, number>();
    w.cdnProxy.rule = (r) => {
      if (r.range === undefined) return undefined;
      const n = tries.get(r.range) ?? 0;
      tries.set(r.range, n + 1);
      return n < 4 ? { kind: 'status', status: n % 2 === 0 ? 503 : 500 } : undefined;
    };
    const out = join(w.work, 'out.bin');
    await pullModel(w.device, out);
    await expectVerified(out, w.plain);
    const gets = cdnGets(w);
    const ranges = new Set(gets.map((e) => e.range));
    expect(gets.filter((e) => e.status === 503)).toHaveLength(2 * ranges.size);
    expect(gets.filter((e) => e.status === 500)).toHaveLength(2 * ranges.size);
    for (const range of ranges) {
      const attempts = gets.filter((e) => e.range === range);
      expect(attempts.map((e) => e.status)).toEqual([503, 500, 503, 500, 206]);
      // The 4th attempt is the chunk-level retry: not before its backoff.
      expect((attempts[3]?.at ?? 0) - (attempts[2]?.at ?? 0)).toBeGreaterThanOrEqual(95);
    }
    w.cdnProxy.rule = () => undefined;
    await expectServes(w.api, w.plain);
  });

  it('radosgw answering 503 to everything: a typed error naming the CDN, no file', async () => {
    const w = await s3World(env);
    w.cdnProxy.rule = (r) => (r.range === undefined ? undefined : { kind: 'status', status: 503 });
    const err = await rejection(pullModel(w.device, join(w.work, 'out.bin')));
    expect(['ERR_NETWORK', 'ERR_CDN']).toContain(err.code);
    expect(err.message).toContain(w.cdnProxy.url);
    expect(err.message).not.toContain(env.read.secretAccessKey);
    expect(await entries(w.work)).toEqual(['src.bin']);
    w.cdnProxy.rule = () => undefined;
    await expectServes(w.api, w.plain);
  });

  it('the big part truncated on the CDN: a typed error, no file, no temp file', async () => {
    const w = await s3World(env);
    const got = await w.s3.send(new GetObjectCommand({ Bucket: w.bucket, Key: w.key }));
    const body = Buffer.from(
      await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    );
    await putObject(w, body.subarray(0, body.length - CHUNK / 2));
    const err = await rejection(pullModel(w.device, join(w.work, 'out.bin')));
    expect(['ERR_SOURCE_CHANGED', 'ERR_CDN', 'ERR_NOT_FOUND']).toContain(err.code);
    expect(await entries(w.work)).toEqual(['src.bin']);
    await putObject(w, body);
    await expectServes(w.api, w.plain);
  });

  it('the big part replaced on the CDN in the middle of a pull: ERR_SOURCE_CHANGED, no file', async () => {
    const w = await s3World(env);
    const got = await w.s3.send(new GetObjectCommand({ Bucket: w.bucket, Key: w.key }));
    const body = Buffer.from(
      await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    );
    const replaced = gate();
    let ranged = 0;
    w.cdnProxy.rule = (r) =>
      r.range !== undefined && ++ranged === 3
        ? { kind: 'hold', until: replaced.opened }
        : undefined;
    const pulling = rejection(pullModel(w.device, join(w.work, 'out.bin'), { concurrency: 1 }));
    await w.cdnProxy.waitFor('the third range held', (log) => log.some((e) => e.action === 'hold'));
    // A re-upload of other bytes (one flipped in the last chunk, not fetched yet): a new ETag.
    const other = Buffer.from(body);
    other[other.length - 1] = (other[other.length - 1] as number) ^ 0x01;
    await putObject(w, other);
    replaced.open();
    const err = await pulling;
    expect(err.code).toBe('ERR_SOURCE_CHANGED');
    expect(await entries(w.work)).toEqual(['src.bin']);
    await putObject(w, body);
    await expectServes(w.api, w.plain);
  });
});
