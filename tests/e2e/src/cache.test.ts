// The shared cache of big parts across processes, against the real server on loopback: child
// processes pull through the built @sluice/core into one cache, the server counts big-part
// requests, and a gate on the big-part route holds a download in progress when a test needs one.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BigPartCache, pull, push } from '@sluice/core';
import { describe, expect, it } from 'vitest';
import {
  type ApiServer,
  createUserViaApi,
  DEVICE_USER,
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

const HW = sha('cache device');
const KiB = 1024;
const CHUNK = 64 * KiB;
const e2eDir = fileURLToPath(new URL('..', import.meta.url));

interface World {
  api: ApiServer;
  work: string;
  cacheDir: string;
  plain: Map<string, Buffer>;
  /** Big-part requests that reached the server, for one resource name. */
  bigGets(name: string): number;
  /** Holds every big-part request after the first `passes` until the returned function is called. */
  closeGate(passes?: number): () => void;
}

/** A server with resources `names` (~ `size` bytes each, 64 KiB chunks) and an empty cache dir. */
async function world(names: string[], size = 600 * KiB): Promise<World> {
  let gate: Promise<void> | undefined;
  let passes = 0;
  const api = await startForTest({
    beforeListen: (server) => {
      server.app.addHook('onRequest', async (request) => {
        if (!/^\/resources\/models\/[^/]+\/big/.test(request.url)) return;
        if (passes > 0) passes--;
        else await gate;
      });
    },
  });
  const work = await tempDir('sluice-cache-');
  onCleanup(() => removeDir(work));
  await createUserViaApi(api, UPLOADER, 'ResourceUploader');
  await createUserViaApi(api, DEVICE_USER, 'Operator');
  const uploader = await signedIn(api, UPLOADER);
  const plain = new Map<string, Buffer>();
  for (const [i, name] of names.entries()) {
    const bytes = randomBytes(size + i * 50 * KiB);
    const src = join(work, `${name}.src`);
    await writeFile(src, bytes);
    await push(uploader, 'models', name, src, { chunkSize: CHUNK });
    plain.set(name, bytes);
  }
  return {
    api,
    work,
    cacheDir: join(work, 'cache'),
    plain,
    bigGets: (name) => api.hitCount(`GET /resources/models/${name}/big`),
    closeGate: (n = 0) => {
      passes = n;
      let release: () => void = () => {};
      gate = new Promise((resolve) => {
        release = resolve;
      });
      const open = () => {
        gate = undefined;
        release();
      };
      onCleanup(async () => open());
      return open;
    },
  };
}

/**
 * A child process that signs in as the device user and pulls `name` into `to` through the cache,
 * printing 'waiting' when it waits for another holder and a JSON line with the result.
 */
function pullChild(w: World, name: string, to: string): ChildProcess {
  const code = `
    import { Session, pull } from '@sluice/core';
    const s = new Session({ apiUrl: ${JSON.stringify(w.api.url)} });
    s.setCredentials(${JSON.stringify(DEVICE_USER)}, process.env.PW);
    await s.login();
    const r = await pull(s, 'models', ${JSON.stringify(name)}, {
      to: ${JSON.stringify(to)},
      password: process.env.PW,
      hardware: ${JSON.stringify(HW)},
      cacheDir: ${JSON.stringify(w.cacheDir)},
      onCacheWait: (owner) => console.log('waiting for ' + owner.pid),
    });
    console.log(JSON.stringify({ fromCache: r.fromCache, size: r.size }));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    cwd: e2eDir,
    env: { ...process.env, PW: PASSWORD },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // A test that fails while the child waits at the gate must not leave it running.
  onCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function outcome(child: ChildProcess): Promise<ChildResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += String(d);
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += String(d);
  });
  return new Promise((resolve) => {
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Resolves once any of `children` prints `text` on stdout. */
function printed(children: ChildProcess[], text: string): Promise<void> {
  return new Promise((resolve) => {
    for (const c of children) {
      let seen = '';
      c.stdout?.on('data', (d: Buffer) => {
        seen += String(d);
        if (seen.includes(text)) resolve();
      });
    }
  });
}

const lastJson = (r: ChildResult) =>
  JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as { fromCache: boolean; size: number };

const pullCached = async (
  w: World,
  name: string,
  extra: { to?: string; cacheMaxBytes?: number } = {},
) =>
  pull(await signedIn(w.api, DEVICE_USER), 'models', name, {
    to: extra.to ?? 'buffer',
    password: PASSWORD,
    hardware: HW,
    cacheDir: w.cacheDir,
    ...(extra.cacheMaxBytes === undefined ? {} : { cacheMaxBytes: extra.cacheMaxBytes }),
  });

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('shared cache of big parts', () => {
  it('two processes pulling the same resource at once download its big part once', async () => {
    const w = await world(['model.bin']);
    // How many big-part requests one download takes (no cache).
    const reference = await pull(await signedIn(w.api, DEVICE_USER), 'models', 'model.bin', {
      to: 'buffer',
      password: PASSWORD,
      hardware: HW,
    });
    expect(sha(reference.data)).toBe(sha(w.plain.get('model.bin') as Buffer));
    const oneDownload = w.bigGets('model.bin');
    expect(oneDownload).toBeGreaterThan(5);

    const open = w.closeGate();
    const outs = [join(w.work, 'one.bin'), join(w.work, 'two.bin')];
    const children = outs.map((to) => pullChild(w, 'model.bin', to));
    const results = children.map(outcome);
    // One holds the entry's lock with its download held at the gate; the other waits for it.
    await printed(children, 'waiting for');
    open();
    const [a, b] = (await Promise.all(results)) as [ChildResult, ChildResult];
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect([lastJson(a).fromCache, lastJson(b).fromCache].sort()).toEqual([false, true]);
    const waiter = a.stdout.includes('waiting for') ? a : b;
    const holder = waiter === a ? children[1] : children[0];
    expect(waiter.stdout).toContain(`waiting for ${holder?.pid}`);
    expect(w.bigGets('model.bin') - oneDownload).toBe(oneDownload);
    for (const out of outs) {
      expect(sha(await readFile(out))).toBe(sha(w.plain.get('model.bin') as Buffer));
    }
    // One complete entry, no partial, no lock, no temp file left.
    const left = await readdir(w.cacheDir);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^[0-9a-f]{64}\.big$/);
  });

  it('takes over the lock of a pull that was killed mid-download and resumes its partial part', async () => {
    const w = await world(['model.bin']);
    // The first 3 chunks get through, then the child's download is held: it holds the lock.
    const open = w.closeGate(3);
    const child = pullChild(w, 'model.bin', join(w.work, 'killed.bin'));
    const done = outcome(child);
    // Chunks written to the partial part so far (a hole reads as zeros, ciphertext never does).
    const kept = async () => {
      const names = existsSync(w.cacheDir) ? await readdir(w.cacheDir) : [];
      const name = names.find((n) => n.endsWith('.big.partial'));
      if (name === undefined) return 0;
      const bytes = await readFile(join(w.cacheDir, name));
      let n = 0;
      for (let at = 0; at + CHUNK <= bytes.length; at += CHUNK) {
        const edges = [bytes.subarray(at, at + 16), bytes.subarray(at + CHUNK - 16, at + CHUNK)];
        if (edges.every((e) => e.some((x) => x !== 0))) n++;
      }
      return n;
    };
    while ((await kept()) < 3) await pause(50);
    const names = await readdir(w.cacheDir);
    expect(names.some((n) => n.endsWith('.lock'))).toBe(true);
    child.kill('SIGKILL');
    expect((await done).code).toBe(null);
    open();
    const killedGets = w.bigGets('model.bin');
    const out = join(w.work, 'after.bin');
    const r = await pullCached(w, 'model.bin', { to: out });
    expect(r.fromCache).toBe(false);
    const resumedGets = w.bigGets('model.bin') - killedGets;
    expect(sha(await readFile(out))).toBe(sha(w.plain.get('model.bin') as Buffer));
    expect(existsSync(join(w.work, 'killed.bin'))).toBe(false);
    const left = await readdir(w.cacheDir);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^[0-9a-f]{64}\.big$/);
    expect((await pullCached(w, 'model.bin')).fromCache).toBe(true);
    // The resumed pull fetched only what the killed one had not kept: 3 chunks fewer.
    const before = w.bigGets('model.bin');
    await pull(await signedIn(w.api, DEVICE_USER), 'models', 'model.bin', {
      to: 'buffer',
      password: PASSWORD,
      hardware: HW,
    });
    expect(resumedGets).toBe(w.bigGets('model.bin') - before - 3);
  });

  it('a pull waiting for the lock stops with ERR_ABORTED, leaving no output; the holder finishes', async () => {
    const w = await world(['model.bin']);
    const open = w.closeGate();
    const child = pullChild(w, 'model.bin', join(w.work, 'holder.bin'));
    const done = outcome(child);
    while (
      !existsSync(w.cacheDir) ||
      !(await readdir(w.cacheDir)).some((n) => n.endsWith('.lock'))
    ) {
      await pause(50);
    }
    const controller = new AbortController();
    const out = join(w.work, 'aborted.bin');
    const err = await rejection(
      pull(await signedIn(w.api, DEVICE_USER), 'models', 'model.bin', {
        to: out,
        password: PASSWORD,
        hardware: HW,
        cacheDir: w.cacheDir,
        signal: controller.signal,
        onCacheWait: () => setTimeout(() => controller.abort(), 50),
      }),
    );
    expect(err.code).toBe('ERR_ABORTED');
    expect(existsSync(out)).toBe(false);
    expect((await readdir(w.work)).filter((n) => n.startsWith('.aborted.bin'))).toEqual([]);
    open();
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson(r).fromCache).toBe(false);
    expect(sha(await readFile(join(w.work, 'holder.bin')))).toBe(
      sha(w.plain.get('model.bin') as Buffer),
    );
    // The aborted pull fetched nothing: all big-part requests were the holder's one download.
    const both = w.bigGets('model.bin');
    await pull(await signedIn(w.api, DEVICE_USER), 'models', 'model.bin', {
      to: 'buffer',
      password: PASSWORD,
      hardware: HW,
    });
    expect(both).toBe(w.bigGets('model.bin') - both);
  });

  it('keeps under cacheMaxBytes by evicting the least recently used big parts', async () => {
    const w = await world(['a.bin', 'b.bin', 'c.bin'], 300 * KiB);
    await pullCached(w, 'a.bin');
    const cache = await BigPartCache.open(w.cacheDir);
    const size = (name: string) =>
      cache.list().then((l) => l.find((e) => e.resource?.name === name)?.size ?? 0);
    const aSize = await size('a.bin');
    await pause(20);
    await pullCached(w, 'b.bin');
    const bSize = await size('b.bin');
    await pause(20);
    expect((await pullCached(w, 'a.bin')).fromCache).toBe(true); // b is now the least recently used
    await pause(20);
    // Room for a and c (c is the largest), not for b as well.
    const limit = aSize + bSize + 50 * KiB + 100 * KiB;
    await pullCached(w, 'c.bin', { cacheMaxBytes: limit });
    const left = await cache.list();
    expect(left.map((e) => e.resource?.name)).toEqual(['c.bin', 'a.bin']);
    expect(left.reduce((s, e) => s + e.size, 0)).toBeLessThanOrEqual(limit);
    const bGets = w.bigGets('b.bin');
    expect((await pullCached(w, 'b.bin')).fromCache).toBe(false);
    expect(w.bigGets('b.bin')).toBeGreaterThan(bGets);
  });

  it('a corrupt entry is reported by verify, never served, and replaced by the next pull', async () => {
    const w = await world(['model.bin']);
    await pullCached(w, 'model.bin');
    const cache = await BigPartCache.open(w.cacheDir);
    const [entry] = await cache.list();
    const path = entry?.path as string;
    const good = await readFile(path);
    const bad = Buffer.from(good);
    bad[2 * CHUNK + 9] = (bad[2 * CHUNK + 9] ?? 0) ^ 0x01;
    await writeFile(path, bad);

    const [report] = await cache.verify();
    expect(report).toMatchObject({ status: 'corrupt', removed: true, digest: entry?.digest });
    expect(existsSync(path)).toBe(false);

    // Corrupted again behind verify's back: the pull does not serve it, it fetches and repairs.
    await writeFile(path, bad);
    const gets = w.bigGets('model.bin');
    const r = await pullCached(w, 'model.bin');
    expect(r.fromCache).toBe(false);
    expect(sha(r.data as Buffer)).toBe(sha(w.plain.get('model.bin') as Buffer));
    expect(w.bigGets('model.bin')).toBeGreaterThan(gets);
    expect((await readFile(path)).equals(good)).toBe(true);
    expect((await cache.verify()).map((e) => e.status)).toEqual(['ok']);
  });
});
