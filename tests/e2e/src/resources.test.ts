import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type EnvelopeResource, pull, push, type Session as SessionType } from '@sluice/core';
import { describe, expect, it } from 'vitest';
import {
  type ApiServer,
  createUserViaApi,
  DEVICE_USER,
  MiB,
  onCleanup,
  PASSWORD,
  rejection,
  removeDir,
  sha,
  signedIn,
  startForTest,
  tempDir,
  UPLOADER,
} from './apiServer.js';

const HW_A = sha('device A');
const HW_B = sha('device B');

interface World {
  api: ApiServer;
  work: string;
  plain: Buffer;
  resource: EnvelopeResource;
  device: SessionType;
  uploader: SessionType;
}

/** A server with an uploader and a device user, and a random ~20 MiB file pushed in 1 MiB chunks. */
async function world(size = 20 * MiB + 12_345): Promise<World> {
  const api = await startForTest();
  const work = await tempDir('sluice-res-');
  onCleanup(() => removeDir(work));
  await createUserViaApi(api, UPLOADER, 'ResourceUploader');
  await createUserViaApi(api, DEVICE_USER, 'Operator');
  const plain = randomBytes(size);
  const src = join(work, 'model.bin');
  await writeFile(src, plain);
  const uploader = await signedIn(api, UPLOADER);
  const resource = await push(uploader, 'models', 'model.bin', src, {
    chunkSize: MiB,
  });
  const device = await signedIn(api, DEVICE_USER);
  return { api, work, plain, resource, device, uploader };
}

const pullModel = (w: World, extra: Partial<Parameters<typeof pull>[3]> = {}) =>
  pull(w.device, 'models', 'model.bin', {
    to: join(w.work, 'out.bin'),
    password: PASSWORD,
    hardware: HW_A,
    ...extra,
  });

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** Names in `dir` that look like sluice temp files. */
async function temps(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.includes('.sluice-'));
}

describe('big/small resources end to end', () => {
  it('uploads, then pulls to a path and to a buffer with the same SHA-256', async () => {
    const w = await world();
    expect(w.resource).toEqual({ folder: 'models', name: 'model.bin', version: 1 });
    const seen: number[] = [];
    const r = await pullModel(w, { onProgress: (p) => seen.push(p.loaded) });
    expect(r.size).toBe(w.plain.length);
    expect(r.fromCache).toBe(false);
    expect(sha(await readFile(join(w.work, 'out.bin')))).toBe(sha(w.plain));
    expect(((await stat(join(w.work, 'out.bin'))).mode & 0o777).toString(8)).toBe('600');
    expect(seen.length).toBeGreaterThan(20);
    expect(w.api.hitCount('GET /resources/models/model.bin/big')).toBeGreaterThanOrEqual(19);

    const b = await pullModel(w, { to: 'buffer' });
    expect(sha(b.data as Buffer)).toBe(sha(w.plain));
    expect(await temps(w.work)).toEqual([]);
  });

  it('refuses a second device with ERR_DEVICE_NOT_BOUND and writes nothing', async () => {
    const w = await world(3 * MiB);
    await pullModel(w, { to: 'buffer' });
    const out = join(w.work, 'other.bin');
    const err = await rejection(pullModel(w, { hardware: HW_B, to: out }));
    expect(err.name).toBe('SluiceError');
    expect((err as { status?: number }).status).toBe(403);
    expect((err as { serverCode?: string }).serverCode).toBe('ERR_DEVICE_NOT_BOUND');
    expect(await exists(out)).toBe(false);
    expect(await temps(w.work)).toEqual([]);
  });

  it('refuses a wrong password with Unauthorized and writes nothing', async () => {
    const w = await world(3 * MiB);
    const out = join(w.work, 'out.bin');
    const err = await rejection(pullModel(w, { password: 'not the password' }));
    expect(err.code).toBe('ERR_UNAUTHORIZED');
    expect(await exists(out)).toBe(false);
    expect(await temps(w.work)).toEqual([]);
  });

  it('answers NotFound for a deleted resource', async () => {
    const w = await world(3 * MiB);
    await w.uploader.request('DELETE', '/resources/models/model.bin');
    const err = await rejection(pullModel(w));
    expect(err.code).toBe('ERR_NOT_FOUND');
    expect(await exists(join(w.work, 'out.bin'))).toBe(false);
  });

  it('uses an intact cache, re-downloads over a tampered one and repairs it', async () => {
    const w = await world(6 * MiB + 7);
    const cacheDir = join(w.work, 'cache');
    const first = await pullModel(w, { cacheDir, to: 'buffer' });
    expect(first.fromCache).toBe(false);
    const files = (await readdir(cacheDir)).filter((n) => n.endsWith('.big'));
    expect(files).toHaveLength(1);
    const cacheFile = join(cacheDir, files[0] as string);
    const good = await readFile(cacheFile);

    const bigGets = () => w.api.hitCount('GET /resources/models/model.bin/big');
    const before = bigGets();
    const cached = await pullModel(w, { cacheDir });
    expect(cached.fromCache).toBe(true);
    expect(bigGets()).toBe(before);
    expect(sha(await readFile(join(w.work, 'out.bin')))).toBe(sha(w.plain));

    const tampered = Buffer.from(good);
    tampered[3 * MiB + 100] = (tampered[3 * MiB + 100] ?? 0) ^ 1;
    await writeFile(cacheFile, tampered);
    const again = await pullModel(w, { cacheDir, to: join(w.work, 'again.bin') });
    expect(again.fromCache).toBe(false);
    expect(bigGets()).toBeGreaterThan(before);
    expect(sha(await readFile(join(w.work, 'again.bin')))).toBe(sha(w.plain));
    expect((await readFile(cacheFile)).equals(good)).toBe(true);
    expect(await temps(cacheDir)).toEqual([]);
    // The cache is named after the manifest of this version.
    expect(files[0]).toMatch(/^[0-9a-f]{64}\.big$/);
  });

  it('stops on abort with ERR_ABORTED, leaving no output; the next pull fetches only what is missing', async () => {
    const w = await world();
    const cacheDir = join(w.work, 'cache');
    const controller = new AbortController();
    const out = join(w.work, 'out.bin');
    const t0 = Date.now();
    const err = await rejection(
      pullModel(w, {
        cacheDir,
        concurrency: 2,
        signal: controller.signal,
        onProgress: (p) => {
          if (p.loaded > 8 * MiB) controller.abort();
        },
      }),
    );
    expect(err.code).toBe('ERR_ABORTED');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await exists(out)).toBe(false);
    expect(await temps(w.work)).toEqual([]);
    // Only the partial big part is left in the cache, never a complete-looking entry.
    const left = await readdir(cacheDir);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^[0-9a-f]{64}\.big\.partial$/);

    const big = 'GET /resources/models/model.bin/big';
    const before = w.api.hitCount(big);
    expect(before).toBeGreaterThanOrEqual(8);
    const r = await pullModel(w, { cacheDir });
    expect(r.fromCache).toBe(false);
    expect(sha(await readFile(out))).toBe(sha(w.plain));
    // 21 chunks in all: the resumed pull fetched only the ones the first did not keep.
    const fetchedAgain = w.api.hitCount(big) - before;
    expect(fetchedAgain).toBeLessThanOrEqual(21 - 8);
    expect(fetchedAgain).toBeGreaterThan(0);
    expect(await readdir(cacheDir)).toEqual([left[0]?.replace('.partial', '')]);
    // The server's close() does not wait for the aborted transfer (checked by the cleanup).
  });

  it('still serves after the server restarts between upload and pull', async () => {
    const w = await world(5 * MiB);
    const { port, dataDir } = w.api;
    await w.api.close();
    const api2 = await startForTest({ port, dataDir });
    expect(api2.port).toBe(port);
    const r = await pullModel(w, { to: 'buffer' });
    expect(sha(r.data as Buffer)).toBe(sha(w.plain));
  });
});
