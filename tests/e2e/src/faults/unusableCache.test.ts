// A cache that cannot be used never fails a pull (through @sluice/core, against the real server
// on loopback): a read-only mount, a regular file, a path under a regular file, an immutable
// directory and a disk that fills up mid-pull each give one warning and a complete, verified
// pull from the network, and never leave an entry behind. We run as root, which ignores mode
// bits: what really fails for root is a read-only mount, chattr +i and a full tmpfs.
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDirProblem, type PullOptions, type PullWarning, pullMany } from '@sluice/core';
import { describe, expect, it } from 'vitest';
import { MiB, PASSWORD, sha, tempDir } from '../apiServer.js';
import { HW, onCleanup, pullModel, pushedWorld, sessionAt, type World } from './faultWorld.js';

const root = process.getuid?.() === 0;
if (!root && process.env.CI === 'true') throw new Error('CI=true: the mount tests need root');

/** A tmpfs of `size` (read-only with `ro`) mounted for this test, unmounted and removed after. */
async function mounted(size: string, ro = false): Promise<string> {
  const dir = await tempDir('sluice-unusable-cache-');
  execFileSync('mount', [
    '-t',
    'tmpfs',
    '-o',
    `size=${size},mode=0700${ro ? ',ro' : ''}`,
    'tmpfs',
    dir,
  ]);
  onCleanup(async () => {
    execFileSync('umount', [dir]);
    await rmdir(dir);
  });
  return dir;
}

let outs = 0;
/** Pulls models/m.bin through `cacheDir`: the result, the warnings, and the output verified. */
async function pullThrough(w: World, cacheDir: string, options: Partial<PullOptions> = {}) {
  const device = await sessionAt(w.api.url);
  const warnings: PullWarning[] = [];
  const out = join(w.work, `out-${++outs}.bin`);
  const r = await pullModel(device, out, {
    cacheDir,
    onWarning: (x) => warnings.push(x),
    ...options,
  });
  expect(sha(await readFile(out))).toBe(sha(w.plain));
  expect(r.fromCache).toBe(false);
  for (const x of warnings) expect(x.message).not.toContain(PASSWORD);
  return { r, warnings };
}

describe('a cache that cannot be used', () => {
  it('a regular file as the cache: one warning (not a directory), the pull completes, the file is untouched', async () => {
    const w = await pushedWorld(3 * MiB);
    const file = join(w.work, 'cache-is-a-file');
    await writeFile(file, 'not a cache');
    const { warnings } = await pullThrough(w, file);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.kind).toBe('cache-unusable');
    expect(warnings[0]?.cache.kind).toBe('not a directory');
    expect(warnings[0]?.message).toContain(file);
    expect(await readFile(file, 'utf8')).toBe('not a cache');
    expect((await cacheDirProblem(file, { create: false }))?.kind).toBe('not a directory');
  });

  it('a cache under a regular file: one warning (cannot create, ENOTDIR), the pull completes', async () => {
    const w = await pushedWorld(3 * MiB);
    const file = join(w.work, 'plain-file');
    await writeFile(file, 'x');
    const cacheDir = join(file, 'cache');
    const { warnings } = await pullThrough(w, cacheDir);
    expect(warnings.map((x) => [x.cache.kind, x.cache.errno])).toEqual([
      ['cannot create', 'ENOTDIR'],
    ]);
    expect((await cacheDirProblem(cacheDir, { create: false }))?.kind).toBe('cannot create');
  });

  it.skipIf(!root)(
    'a read-only mount: one warning (read-only, EROFS), the pull completes',
    async () => {
      const w = await pushedWorld(3 * MiB);
      const ro = await mounted('4m', true);
      const { warnings } = await pullThrough(w, ro);
      expect(warnings.map((x) => [x.cache.kind, x.cache.errno])).toEqual([['read-only', 'EROFS']]);
      expect(await readdir(ro)).toEqual([]);
      // A cache to be created inside the read-only mount cannot be.
      const { warnings: below } = await pullThrough(w, join(ro, 'cache'));
      expect(below.map((x) => [x.cache.kind, x.cache.errno])).toEqual([['cannot create', 'EROFS']]);
      expect(await cacheDirProblem(join(ro, 'cache'), { create: false })).toMatchObject({
        kind: 'cannot create',
        errno: 'EROFS',
      });
    },
  );

  it.skipIf(!root)(
    'an immutable directory (chattr +i): one warning (read-only, EPERM), the pull completes',
    async (ctx) => {
      const w = await pushedWorld(3 * MiB);
      const disk = await mounted('4m');
      const cacheDir = join(disk, 'cache');
      await mkdir(cacheDir);
      try {
        execFileSync('chattr', ['+i', cacheDir]);
      } catch {
        // tmpfs before Linux 6.0 has no immutable flag: the read-only mount covers the case.
        return ctx.skip();
      }
      onCleanup(async () => {
        execFileSync('chattr', ['-i', cacheDir]);
      });
      const { warnings } = await pullThrough(w, cacheDir);
      expect(warnings.map((x) => [x.cache.kind, x.cache.errno])).toEqual([['read-only', 'EPERM']]);
      expect(await readdir(cacheDir)).toEqual([]);
    },
  );

  it.skipIf(!root)(
    'the cache disk fills up mid-pull: one warning (no space), the pull completes, no entry is left',
    async () => {
      // 3 MiB of plaintext: a big part of about 2.1 MiB on a 1 MiB disk, so the fill runs out.
      const w = await pushedWorld(3 * MiB);
      const disk = await mounted('1m');
      const cacheDir = join(disk, 'cache');
      const { warnings } = await pullThrough(w, cacheDir);
      expect(warnings.map((x) => [x.cache.kind, x.cache.errno])).toEqual([['no space', 'ENOSPC']]);
      // The half-written entry was removed: no partial, no entry, nothing that passes for one.
      expect((await readdir(cacheDir)).filter((n) => n.includes('.big'))).toEqual([]);
      // The next pull through the same cache goes the same way, and a cache on a roomier disk works.
      expect((await pullThrough(w, cacheDir)).warnings).toHaveLength(1);
      const roomy = join(await mounted('8m'), 'cache');
      expect((await pullThrough(w, roomy)).warnings).toEqual([]);
      const again = await pullModel(await sessionAt(w.api.url), join(w.work, 'again.bin'), {
        cacheDir: roomy,
      });
      expect(again.fromCache).toBe(true);
    },
  );

  it.skipIf(!root)(
    'a disk already full: the probe says so (no space) before any download',
    async () => {
      const w = await pushedWorld(3 * MiB);
      const disk = await mounted('1m');
      const cacheDir = join(disk, 'cache');
      await mkdir(cacheDir);
      await writeFile(join(disk, 'filler'), Buffer.alloc(MiB)).catch(() => {});
      expect((await cacheDirProblem(cacheDir, { create: false }))?.kind).toBe('no space');
      // A cache still to be made on that disk could not hold anything either.
      expect((await cacheDirProblem(join(disk, 'new'), { create: false }))?.kind).toBe('no space');
      const { warnings } = await pullThrough(w, cacheDir);
      expect(warnings.map((x) => x.cache.kind)).toEqual(['no space']);
      expect(await readdir(cacheDir)).toEqual([]);
    },
  );

  it('a cache entry that cannot be read or removed (a directory in its place): one warning, the pull starts over from the network', async () => {
    const w = await pushedWorld(3 * MiB);
    // Learn the entry's name from a working cache, then put a directory there in another one.
    const good = join(w.work, 'good');
    await pullModel(await sessionAt(w.api.url), join(w.work, 'first.bin'), { cacheDir: good });
    const [entry] = (await readdir(good)).filter((n) => n.endsWith('.big'));
    const cacheDir = join(w.work, 'odd');
    await mkdir(join(cacheDir, entry as string), { recursive: true });
    await writeFile(join(cacheDir, entry as string, 'x'), 'x');
    const { warnings } = await pullThrough(w, cacheDir);
    expect(warnings.map((x) => x.cache.kind)).toEqual(['I/O error']);
    expect(warnings[0]?.message).toMatch(/EISDIR|ENOTEMPTY/);
  });

  it.skipIf(!root)(
    'the destination disk, not the cache, filling up still fails the pull with ERR_IO',
    async () => {
      const w = await pushedWorld(3 * MiB);
      const dest = await mounted('1m');
      const device = await sessionAt(w.api.url);
      const warnings: PullWarning[] = [];
      const err = await pullModel(device, join(dest, 'out.bin'), {
        cacheDir: join(w.work, 'cache'),
        onWarning: (x) => warnings.push(x),
      }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_IO' });
      expect((err as Error).message).toMatch(/ENOSPC|no space/i);
      expect(warnings).toEqual([]);
      expect(await readdir(dest)).toEqual([]);
    },
  );

  it('pullMany through an unusable cache: every resource pulled, one warning for the batch', async () => {
    const w = await pushedWorld(MiB);
    const file = join(w.work, 'batch-cache');
    await writeFile(file, '');
    const warnings: PullWarning[] = [];
    const to = [1, 2, 3].map((i) => join(w.work, `batch-${i}.bin`));
    const results = await pullMany(
      await sessionAt(w.api.url),
      to.map((path) => ({ folder: 'models', name: 'm.bin', to: path })),
      { password: PASSWORD, hardware: HW, cacheDir: file, onWarning: (x) => warnings.push(x) },
    );
    expect(results.map((r) => r.ok)).toEqual([true, true, true]);
    for (const path of to) expect(sha(await readFile(path))).toBe(sha(w.plain));
    expect(warnings.map((x) => x.cache.kind)).toEqual(['not a directory']);
  });

  it.skipIf(!root)(
    'with offline use on (as the CLI pulls), the lease store in the same cache gives no second warning and no ERR_IO',
    async () => {
      const w = await pushedWorld(3 * MiB);
      const file = join(w.work, 'offline-cache-file');
      await writeFile(file, 'mine');
      const ro = await mounted('4m', true);
      const full = join(await mounted('1m'), 'cache');
      for (const [cacheDir, kind] of [
        [file, 'not a directory'],
        [join(file, 'below'), 'cannot create'],
        [ro, 'read-only'],
        [full, 'no space'],
      ] as const) {
        const { r, warnings } = await pullThrough(w, cacheDir, { offline: 'auto' });
        expect(
          warnings.map((x) => x.cache.kind),
          cacheDir,
        ).toEqual([kind]);
        expect(r.offline).toBe(false);
      }
      expect(await readFile(file, 'utf8')).toBe('mine');
      expect(await readdir(ro)).toEqual([]);
      // With the disk full from the start, the lease store is what meets it first: still one
      // warning, and no entry.
      await writeFile(join(full, '..', 'filler'), Buffer.alloc(MiB)).catch(() => {});
      const again = await pullThrough(w, full, { offline: 'auto' });
      expect(again.warnings.map((x) => x.cache.kind)).toEqual(['no space']);
      expect((await readdir(full)).filter((n) => n.includes('.big'))).toEqual([]);
    },
  );

  it('without onWarning the warning goes to process.emitWarning, once', async () => {
    const w = await pushedWorld(MiB);
    const file = join(w.work, 'file');
    await writeFile(file, '');
    const seen: Error[] = [];
    const listener = (e: Error) => seen.push(e);
    process.on('warning', listener);
    onCleanup(async () => {
      process.off('warning', listener);
    });
    await pullModel(await sessionAt(w.api.url), join(w.work, 'o.bin'), { cacheDir: file });
    await new Promise((r) => setImmediate(r));
    const ours = seen.filter((e) => (e as { code?: string }).code === 'SLUICE_CACHE_UNUSABLE');
    expect(ours).toHaveLength(1);
    expect(ours[0]?.message).toMatch(/not a directory/);
  });
});
