import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, utimes, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { BlobStore } from '../stores/blobStore.js';
import { removeDir, tempDir } from '../test-helpers.js';
import { FilePartArea } from './filePartArea.js';
import { FileSweepLock, SWEEP_LOCK_FILE } from './fileSweepLock.js';
import { Sweeper, type SweeperOptions } from './sweeper.js';
import { gate, MemorySource } from './testSource.js';

const GRACE_MS = 60_000;
const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  await Promise.all(dirs.splice(0).map(removeDir));
});

async function dataDir(): Promise<string> {
  const d = await tempDir('sluice-sweep-');
  dirs.push(d);
  return d;
}

/** Commits a part to `blobs` (as an upload does); `aged` sets its mtime past the grace period. */
async function stored(blobs: BlobStore, aged: boolean): Promise<string> {
  const id = await blobs.commit(await blobs.receive(Readable.from([randomBytes(1000)])));
  if (aged) await age(blobs.path(id));
  return id;
}

async function age(path: string): Promise<void> {
  const then = (Date.now() - 2 * GRACE_MS) / 1000;
  await utimes(path, then, then);
}

function sweeper(dir: string, source: MemorySource, more: Partial<SweeperOptions> = {}): Sweeper {
  return new Sweeper({
    source,
    lock: new FileSweepLock(dir),
    parts: [new FilePartArea(join(dir, 'blobs')), new FilePartArea(join(dir, 'parcels', 'blobs'))],
    cdn: null,
    graceMs: GRACE_MS,
    ...more,
  });
}

const NOTHING = { uploadsAborted: 0, partsRemoved: 0, cdnObjectsRemoved: 0, failures: 0 };

describe('Sweeper over the data directory', () => {
  it('removes unreferenced parts older than the grace period and nothing else', async () => {
    const dir = await dataDir();
    const blobs = await BlobStore.open(dir);
    const parcels = await BlobStore.open(join(dir, 'parcels'));
    const source = new MemorySource();
    const kept = await stored(blobs, true);
    const keptParcel = await stored(parcels, true);
    source.blobIds.add(kept).add(keptParcel);
    const orphan = await stored(blobs, true);
    const orphanParcel = await stored(parcels, true);
    const young = await stored(blobs, false);
    await writeFile(join(blobs.dir, 'notes.txt'), 'not a part');
    await age(join(blobs.dir, 'notes.txt'));

    expect(await sweeper(dir, source).sweep()).toEqual({ ...NOTHING, partsRemoved: 2 });
    expect((await readdir(blobs.dir)).sort()).toEqual(['.tmp', kept, 'notes.txt', young].sort());
    expect(await readdir(parcels.dir)).toEqual(['.tmp', keptParcel]);
    expect(existsSync(blobs.path(orphan))).toBe(false);
    expect(existsSync(parcels.path(orphanParcel))).toBe(false);
    expect((await blobs.readAll(kept, 1000)).length).toBe(1000);
    // Once past the grace period, the young one goes too.
    await age(blobs.path(young));
    expect(await sweeper(dir, source).sweep()).toEqual({ ...NOTHING, partsRemoved: 1 });
  });

  it('has nothing to do where the parcels folder does not exist yet', async () => {
    const dir = await dataDir();
    await BlobStore.open(dir);
    expect(await sweeper(dir, new MemorySource()).sweep()).toEqual(NOTHING);
  });

  it('removes nothing when the source names no part at all', async () => {
    const dir = await dataDir();
    const blobs = await BlobStore.open(dir);
    const parts = [await stored(blobs, true), await stored(blobs, true)];
    const warnings: unknown[] = [];
    const log = { info() {}, warn: (o: unknown) => warnings.push(o) };
    const s = sweeper(dir, new MemorySource(), { log });
    expect(await s.sweep()).toEqual({ ...NOTHING, failures: 1 });
    expect((await readdir(blobs.dir)).filter((n) => n !== '.tmp').sort()).toEqual(parts.sort());
    expect(warnings).toEqual([{ event: 'sweep.refused', parts: 2 }]);
  });

  it('goes on with the other areas when one cannot be listed', async () => {
    const dir = await dataDir();
    const blobs = await BlobStore.open(dir);
    const source = new MemorySource();
    source.blobIds.add(await stored(blobs, true));
    const orphan = await stored(blobs, true);
    await writeFile(join(dir, 'not-a-dir'), '');
    const parts = [new FilePartArea(join(dir, 'not-a-dir')), new FilePartArea(blobs.dir)];
    const s = sweeper(dir, source, { parts });
    expect(await s.sweep()).toEqual({ ...NOTHING, partsRemoved: 1, failures: 1 });
    expect(existsSync(blobs.path(orphan))).toBe(false);
    expect(s.totals).toMatchObject({ passes: 1, partsRemoved: 1, failures: 1, skipped: 0 });
  });
});

describe('Sweeper lock', () => {
  it('lets one of two sweepers sweep at a time', async () => {
    const dir = await dataDir();
    const blobs = await BlobStore.open(dir);
    const source = new MemorySource();
    source.blobIds.add(await stored(blobs, true));
    const orphan = await stored(blobs, true);
    const held = gate();
    source.gate = held.wait;
    const a = sweeper(dir, source);
    const b = sweeper(dir, source);
    const first = a.sweep();
    // a is inside its pass (waiting on the source) and holds the lock file.
    await waitFor(() => existsSync(join(dir, SWEEP_LOCK_FILE)));
    expect(await b.sweep()).toBeNull();
    expect(await a.sweep()).toBeNull();
    expect(existsSync(blobs.path(orphan))).toBe(true);
    held.open();
    expect(await first).toEqual({ ...NOTHING, partsRemoved: 1 });
    expect(existsSync(join(dir, SWEEP_LOCK_FILE))).toBe(false);
    expect(b.totals).toMatchObject({ passes: 0, skipped: 1 });
    expect(a.totals).toMatchObject({ passes: 1, skipped: 1, partsRemoved: 1 });
    // Free again: b runs a pass, with nothing left to do.
    expect(await b.sweep()).toEqual(NOTHING);
  }, 20_000);

  it('skips while another process holds the lock, and takes it over once that one died', async () => {
    const dir = await dataDir();
    const blobs = await BlobStore.open(dir);
    const source = new MemorySource();
    source.blobIds.add(await stored(blobs, true));
    const orphan = await stored(blobs, true);
    const child = lockHolder(join(dir, SWEEP_LOCK_FILE));
    await printed(child, 'locked');
    const s = sweeper(dir, source);
    expect(await s.sweep()).toBeNull();
    expect(existsSync(blobs.path(orphan))).toBe(true);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(await s.sweep()).toEqual({ ...NOTHING, partsRemoved: 1 });
  });
});

describe('Sweeper loop', () => {
  it('sweeps every interval until stopped', async () => {
    const dir = await dataDir();
    const blobs = await BlobStore.open(dir);
    const source = new MemorySource();
    source.blobIds.add(await stored(blobs, true));
    const s = sweeper(dir, source);
    s.start(20);
    expect(() => s.start(20)).toThrow(/already started/);
    const orphan = await stored(blobs, true);
    await waitFor(() => s.totals.partsRemoved === 1);
    expect(existsSync(blobs.path(orphan))).toBe(false);
    await waitFor(() => s.totals.passes >= 3);
    await s.stop();
    const passes = s.totals.passes;
    await new Promise((r) => setTimeout(r, 150));
    expect(s.totals.passes).toBe(passes);
    expect(s.totals.lastPassAt).toBeGreaterThan(Date.now() - 5000);
    // Started again after a stop, it sweeps again.
    const later = await stored(blobs, true);
    s.start(20);
    await waitFor(() => !existsSync(blobs.path(later)));
    await s.stop();
  });

  it('stop() aborts the pass in flight and leaves the rest for the next one', async () => {
    const dir = await dataDir();
    const blobs = await BlobStore.open(dir);
    const source = new MemorySource();
    source.blobIds.add(await stored(blobs, true));
    const orphan = await stored(blobs, true);
    const held = gate();
    source.gate = held.wait;
    const s = sweeper(dir, source);
    s.start(1);
    await waitFor(() => existsSync(join(dir, SWEEP_LOCK_FILE)));
    const stopping = s.stop();
    held.open();
    await stopping;
    expect(existsSync(blobs.path(orphan))).toBe(true);
    expect(existsSync(join(dir, SWEEP_LOCK_FILE))).toBe(false);
    expect(s.totals).toMatchObject({ passes: 1, partsRemoved: 0, failures: 0 });
  });

  it('refuses a bad grace period or interval', async () => {
    const dir = await dataDir();
    expect(() => sweeper(dir, new MemorySource(), { graceMs: -1 })).toThrow(/graceMs/);
    expect(() => sweeper(dir, new MemorySource()).start(0)).toThrow(/intervalMs/);
    expect(sweeper(dir, new MemorySource(), { graceMs: undefined }).graceMs).toBe(86_400_000);
  });
});

async function waitFor(done: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A child process that takes the FileLock at `path` (from the built core), prints 'locked', holds it. */
function lockHolder(path: string): ChildProcess {
  const core = pathToFileURL(createRequire(import.meta.url).resolve('@sluice/core')).href;
  const code = `
    import { FileLock } from ${JSON.stringify(core)};
    await FileLock.acquire(${JSON.stringify(path)});
    console.log('locked');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
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
