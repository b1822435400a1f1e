import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { EnvelopeResource, Manifest } from '@sluice/protocol';
import { describe, expect, it } from 'vitest';
import { sealAndSplit } from '../format/sealAndSplit.js';
import { FileLock, type LockOwner } from '../platform/fileLock.js';
import { expectSluiceError, tempDir, tempFilesIn } from '../test-helpers.js';
import { BigPartCache, type PartConsumer, type ProvideOptions } from './bigPartCache.js';
import { entryTrailer } from './entryTrailer.js';
import { manifestDigest } from './manifestDigest.js';

const CHUNK = 16 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Part {
  manifest: Manifest;
  big: Buffer;
  digest: string;
  resource: EnvelopeResource;
}

let parts = 0;
/** A real sealed big part of about `size` bytes in 16 KiB chunks, with its manifest. */
async function part(size = 150 * 1024): Promise<Part> {
  const dir = await tempDir();
  const src = join(dir, 'src.bin');
  await writeFile(src, randomBytes(size));
  const sealed = await sealAndSplit(src, {
    paths: { small: join(dir, 'small'), big: join(dir, 'big') },
    smallSizeKB: 1,
    chunkSize: CHUNK,
  });
  const big = await readFile(sealed.bigPath);
  parts++;
  return {
    manifest: sealed.manifest,
    big,
    digest: manifestDigest(sealed.manifest),
    resource: { folder: 'models', name: `m${parts}.bin`, version: 1 },
  };
}

/** A consumer of `provide`: records the chunks it was given and what it downloaded (from `p.big`). */
function consumer(
  p: Part,
  options: { failAfter?: number; signal?: AbortSignal; onWait?: (owner: LockOwner) => void } = {},
) {
  const got = new Map<number, string>();
  const state = { downloads: 0, fetched: [] as number[], replayed: [] as number[], restarts: 0 };
  const feed: PartConsumer = {
    replay: async (i, data) => {
      state.replayed.push(i);
      got.set(i, sha(data));
    },
    restart: () => {
      state.restarts++;
      got.clear();
    },
    download: async (skip, store) => {
      state.downloads++;
      for (let i = 0; i < p.manifest.chunks.length; i++) {
        if (skip.has(i)) continue;
        if (options.failAfter !== undefined && state.fetched.length >= options.failAfter) {
          throw new Error('link lost');
        }
        await new Promise((r) => setTimeout(r, 2));
        const data = Buffer.from(p.big.subarray(i * CHUNK, (i + 1) * CHUNK));
        state.fetched.push(i);
        await store?.(i, data);
        got.set(i, sha(data));
      }
    },
  };
  const provideOptions: ProvideOptions = {
    resource: p.resource,
    signal: options.signal,
    onWait: options.onWait,
  };
  /** `provide`'s arguments after the manifest. */
  const args = [feed, provideOptions] as const;
  /** Every chunk was delivered once and matches the manifest. */
  const complete = () =>
    got.size === p.manifest.chunks.length &&
    p.manifest.chunks.every((digest, i) => got.get(i) === digest);
  return { args, state, complete };
}

const entries = async (dir: string) => (await readdir(dir)).sort();
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('BigPartCache', () => {
  it('downloads a missing part into an entry with its manifest, then serves it from the entry', async () => {
    const cache = await BigPartCache.open(join(await tempDir(), 'cache'));
    expect(((await stat(cache.dir)).mode & 0o777).toString(8)).toBe('700');
    const p = await part();
    const a = consumer(p);
    expect(await cache.provide(p.manifest, ...a.args)).toBe(false);
    expect(a.complete()).toBe(true);
    expect(a.state.fetched).toHaveLength(p.manifest.chunks.length);
    expect(await entries(cache.dir)).toEqual([`${p.digest}.big`]);
    const file = await readFile(cache.entryPath(p.digest));
    expect(file.subarray(0, p.big.length).equals(p.big)).toBe(true);
    expect(file.subarray(p.big.length).equals(entryTrailer(p.manifest, p.resource))).toBe(true);
    expect(((await stat(cache.entryPath(p.digest))).mode & 0o777).toString(8)).toBe('600');

    const b = consumer(p);
    expect(await cache.provide(p.manifest, ...b.args)).toBe(true);
    expect(b.complete()).toBe(true);
    expect(b.state.downloads).toBe(0);

    const [listed] = await cache.list();
    expect(listed).toMatchObject({
      digest: p.digest,
      size: file.length,
      complete: true,
      resource: p.resource,
    });
  });

  it('fetches a part once when two callers want it at the same time: the second waits, then reads the entry', async () => {
    const cache = await BigPartCache.open(await tempDir());
    const p = await part();
    const waited: number[] = [];
    const a = consumer(p, { onWait: (o) => waited.push(o.pid) });
    const b = consumer(p, { onWait: (o) => waited.push(o.pid) });
    const results = await Promise.all([
      cache.provide(p.manifest, ...a.args),
      cache.provide(p.manifest, ...b.args),
    ]);
    expect(results.sort()).toEqual([false, true]);
    expect(a.state.downloads + b.state.downloads).toBe(1);
    expect(waited).toEqual([process.pid]);
    expect(a.complete() && b.complete()).toBe(true);
  });

  it('never serves a corrupt entry: it restarts, fetches again and replaces the entry', async () => {
    const cache = await BigPartCache.open(await tempDir());
    const p = await part();
    await cache.provide(p.manifest, ...consumer(p).args);
    const path = cache.entryPath(p.digest);
    const good = await readFile(path);
    const bad = Buffer.from(good);
    const at = 5 * CHUNK + 77;
    bad[at] = (bad[at] ?? 0) ^ 0x40;
    await writeFile(path, bad);

    const c = consumer(p);
    expect(await cache.provide(p.manifest, ...c.args)).toBe(false);
    expect(c.state.restarts).toBe(1);
    expect(c.state.replayed).toEqual([0, 1, 2, 3, 4]);
    expect(c.state.downloads).toBe(1);
    expect(c.complete()).toBe(true);
    expect((await readFile(path)).equals(good)).toBe(true);
    expect(await tempFilesIn(cache.dir)).toEqual([]);
  });

  it('verify reports and removes corrupt entries, keeps intact ones and reports those without a manifest', async () => {
    const cache = await BigPartCache.open(await tempDir());
    const [good, bad, truncated, raw] = [await part(), await part(), await part(), await part()];
    for (const p of [good, bad, truncated]) await cache.provide(p.manifest, ...consumer(p).args);
    const badPath = cache.entryPath(bad.digest);
    const bytes = await readFile(badPath);
    bytes[CHUNK * 2] = (bytes[CHUNK * 2] ?? 0) ^ 1;
    await writeFile(badPath, bytes);
    await truncate(cache.entryPath(truncated.digest), truncated.big.length - 100);
    // A bare big part, as an upload or an older sluice left it: no stored manifest.
    await writeFile(cache.entryPath(raw.digest), raw.big);

    const seen: string[] = [];
    const report = await cache.verify({ onEntry: (e) => seen.push(e.digest) });
    const by = (p: Part) => report.find((e) => e.digest === p.digest);
    expect(seen.sort()).toEqual([good, bad, truncated, raw].map((p) => p.digest).sort());
    expect(by(good)).toMatchObject({ status: 'ok', removed: false, resource: good.resource });
    expect(by(bad)).toMatchObject({ status: 'corrupt', removed: true });
    expect(by(bad)?.reason).toBe(
      `chunk 2 of ${bad.manifest.chunks.length} does not match its digest`,
    );
    // Cut short, the trailer is gone with the tail: nothing left to check it against.
    expect(by(truncated)).toMatchObject({ status: 'unverifiable', removed: false });
    expect(by(raw)).toMatchObject({ status: 'unverifiable', removed: false });
    expect(by(raw)?.reason).toBe('no stored manifest');
    expect(existsSync(badPath)).toBe(false);

    // Used once, the bare entry gains its manifest (and the truncated one is fetched again).
    const r = consumer(raw);
    expect(await cache.provide(raw.manifest, ...r.args)).toBe(true);
    const t = consumer(truncated);
    expect(await cache.provide(truncated.manifest, ...t.args)).toBe(false);
    expect(r.complete() && t.complete()).toBe(true);
    const again = await cache.verify();
    expect(again.map((e) => e.status)).toEqual(['ok', 'ok', 'ok']);
  });

  it('a stored manifest that does not match the entry name makes the entry corrupt', async () => {
    const cache = await BigPartCache.open(await tempDir());
    const [a, b] = [await part(), await part()];
    // b's bytes and manifest under a's name.
    await writeFile(
      cache.entryPath(a.digest),
      Buffer.concat([b.big, entryTrailer(b.manifest, b.resource)]),
    );
    const [e] = await cache.verify();
    expect(e).toMatchObject({ status: 'corrupt', removed: true });
    expect(e?.reason).toBe('its stored manifest does not match its name');
  });

  it('resumes a cut-off download from the partial entry, fetching only what is missing', async () => {
    const cache = await BigPartCache.open(await tempDir());
    const p = await part();
    const n = p.manifest.chunks.length;
    const first = consumer(p, { failAfter: 4 });
    await expect(cache.provide(p.manifest, ...first.args)).rejects.toThrow('link lost');
    expect(await entries(cache.dir)).toEqual([`${p.digest}.big.partial`]);
    const [partial] = await cache.list();
    expect(partial?.complete).toBe(false);

    const second = consumer(p);
    expect(await cache.provide(p.manifest, ...second.args)).toBe(false);
    expect(second.state.replayed).toEqual([0, 1, 2, 3]);
    expect(second.state.fetched).toEqual(Array.from({ length: n - 4 }, (_, i) => i + 4));
    expect(second.complete()).toBe(true);
    expect(await entries(cache.dir)).toEqual([`${p.digest}.big`]);
  });

  it('keeps under maxBytes by evicting the least recently used entries', async () => {
    const dir = await tempDir();
    const [a, b, c] = [await part(), await part(), await part()];
    const entryBytes = (p: Part) => p.big.length + entryTrailer(p.manifest, p.resource).length;
    // Room for two entries, not three.
    const cache = await BigPartCache.open(dir, {
      maxBytes: entryBytes(a) + entryBytes(b) + entryBytes(c) - 1,
    });
    await cache.provide(a.manifest, ...consumer(a).args);
    await pause(20);
    await cache.provide(b.manifest, ...consumer(b).args);
    await pause(20);
    // A is used again: B is now the least recently used.
    expect(await cache.provide(a.manifest, ...consumer(a).args)).toBe(true);
    await pause(20);
    await cache.provide(c.manifest, ...consumer(c).args);
    const left = (await cache.list()).map((e) => e.digest);
    expect(left).toEqual([c.digest, a.digest]);
    const total = (await cache.list()).reduce((s, e) => s + e.size, 0);
    expect(total).toBeLessThanOrEqual(cache.maxBytes as number);
  });

  it('prune skips entries in use (locked) and never touches files that are not entries', async () => {
    const cache = await BigPartCache.open(await tempDir());
    const [a, b] = [await part(), await part()];
    await cache.provide(a.manifest, ...consumer(a).args);
    await cache.provide(b.manifest, ...consumer(b).args);
    await writeFile(join(cache.dir, 'notes.txt'), 'mine');
    const lock = await cache.lock(a.digest);
    const removed = await cache.prune({ all: true });
    expect(removed.map((e) => e.digest)).toEqual([b.digest]);
    await lock.release();
    expect(await entries(cache.dir)).toEqual([`${a.digest}.big`, 'notes.txt']);
    expect((await cache.prune({ maxBytes: 0 })).map((e) => e.digest)).toEqual([a.digest]);
    expect(await entries(cache.dir)).toEqual(['notes.txt']);
    expect(await cache.prune()).toEqual([]); // no limit: nothing to do
  });

  it('does not cache a part larger than maxBytes', async () => {
    const cache = await BigPartCache.open(await tempDir(), { maxBytes: 64 * 1024 });
    const p = await part();
    const c = consumer(p);
    expect(await cache.provide(p.manifest, ...c.args)).toBe(false);
    expect(c.complete()).toBe(true);
    expect(await entries(cache.dir)).toEqual([]);
  });

  it('stops with ERR_ABORTED while waiting for another holder, without downloading', async () => {
    const cache = await BigPartCache.open(await tempDir());
    const p = await part();
    const holder = await cache.lock(p.digest);
    const controller = new AbortController();
    const c = consumer(p, { signal: controller.signal });
    setTimeout(() => controller.abort(), 150);
    await expectSluiceError(cache.provide(p.manifest, ...c.args), 'ERR_ABORTED');
    expect(c.state.downloads).toBe(0);
    await holder.release();
    expect(await entries(cache.dir)).toEqual([]);
  });

  it('put adds a big part held as a file, with its manifest; a wrong-sized file is refused', async () => {
    const cache = await BigPartCache.open(await tempDir());
    const [a, b] = [await part(), await part()];
    const src = join(await tempDir(), 'a.big');
    await writeFile(src, a.big);
    expect(await cache.put(src, a.manifest, { resource: a.resource })).toBe(true);
    expect(existsSync(src)).toBe(true);
    const moved = join(await tempDir(), 'b.big');
    await writeFile(moved, b.big);
    expect(await cache.put(moved, b.manifest, { move: true })).toBe(true);
    expect(existsSync(moved)).toBe(false);
    expect((await cache.verify()).map((e) => e.status)).toEqual(['ok', 'ok']);
    const c = consumer(a);
    expect(await cache.provide(a.manifest, ...c.args)).toBe(true);
    expect(c.complete()).toBe(true);

    const wrong = join(await tempDir(), 'wrong.big');
    const other = await part();
    await writeFile(wrong, other.big.subarray(1));
    await expectSluiceError(cache.put(wrong, other.manifest), 'ERR_BAD_BLOB');
    expect(existsSync(wrong)).toBe(true);
    expect(await entries(cache.dir)).toEqual([`${a.digest}.big`, `${b.digest}.big`].sort());
  });

  it('prune removes the stale locks and old lock temp files that killed processes leave', async () => {
    const cache = await BigPartCache.open(await tempDir(), { maxBytes: 1 << 30 });
    const p = await part();
    const dead = { pid: 999_999_999, host: hostname(), since: 0, token: 't'.repeat(24) };
    await writeFile(cache.lockPath(p.digest), JSON.stringify(dead));
    const temp = join(cache.dir, `.${p.digest}.lock.sluice-0123456789ab.tmp`);
    await writeFile(temp, '');
    const old = new Date(Date.now() - 3600_000);
    await utimes(temp, old, old);
    const live = await cache.lock('f'.repeat(64));
    await cache.prune();
    expect(await entries(cache.dir)).toEqual([`${'f'.repeat(64)}.lock`]);
    await live.release();
  });

  it('rejects a bad digest and a bad maxBytes', async () => {
    const dir = await tempDir();
    await expect(BigPartCache.open(dir, { maxBytes: -1 })).rejects.toThrow(RangeError);
    const cache = await BigPartCache.open(dir);
    expect(() => cache.entryPath('../etc/passwd.js')).toThrow(RangeError);
    await expect(FileLock.tryAcquire(join(dir, 'x', 'y.lock'))).rejects.toThrow();
  });
});
