// pullMany against the real server on loopback (embedded default: big parts from the API's own
// range route): per-resource results with failures, limits counted at the server, aggregate
// progress, abort, the shared login and the cache.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type PullManyProgress, type PullRequest, pullMany, push, Session } from '@sluice/core';
import { describe, expect, it } from 'vitest';
import {
  type ApiServer,
  createUserViaApi,
  DEVICE_USER,
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

const HW = sha('batch device');
const auth = { password: PASSWORD, hardware: HW };
const KiB = 1024;

interface Batch {
  api: ApiServer;
  out: string;
  /** Plaintext SHA-256 by resource name (all in folder 'models'). */
  shas: Map<string, string>;
  sizes: Map<string, number>;
  requests: PullRequest[];
}

/** A server with `count` resources of ~200 KiB pushed in 16 KiB chunks (4 to 10 chunks each). */
async function batch(count: number, start: StartOptions = {}): Promise<Batch> {
  const api = await startForTest(start);
  const work = await tempDir('sluice-many-');
  onCleanup(() => removeDir(work));
  const out = join(work, 'out');
  await mkdir(out);
  await createUserViaApi(api, UPLOADER, 'ResourceUploader');
  await createUserViaApi(api, DEVICE_USER, 'Operator');
  const uploader = await signedIn(api, UPLOADER);
  const shas = new Map<string, string>();
  const sizes = new Map<string, number>();
  const requests: PullRequest[] = [];
  for (let i = 0; i < count; i++) {
    const name = `m${i}.bin`;
    const plain = randomBytes(100 * KiB + i * 20 * KiB + i);
    const src = join(work, name);
    await writeFile(src, plain);
    await push(uploader, 'models', name, src, { chunkSize: 16 * KiB });
    shas.set(name, sha(plain));
    sizes.set(name, plain.length);
    requests.push({ folder: 'models', name, to: join(out, name) });
  }
  return { api, out, shas, sizes, requests };
}

/** Counts requests in flight at the server per kind, each held `delayMs` before it is handled. */
function inFlight(delayMs: number) {
  const now = { envelope: 0, big: 0 };
  const peak = { envelope: 0, big: 0 };
  const kind = (method: string, url: string) =>
    method === 'POST' && url.startsWith('/resources/get/')
      ? 'envelope'
      : method === 'GET' && /^\/resources\/[^/]+\/[^/]+\/big/.test(url)
        ? 'big'
        : undefined;
  const beforeListen: StartOptions['beforeListen'] = (s) => {
    s.app.addHook('onRequest', async (req) => {
      const k = kind(req.method, req.url);
      if (k === undefined) return;
      now[k]++;
      peak[k] = Math.max(peak[k], now[k]);
      await new Promise((r) => setTimeout(r, delayMs));
    });
    s.app.addHook('onResponse', async (req) => {
      const k = kind(req.method, req.url);
      if (k !== undefined) now[k]--;
    });
  };
  return { now, peak, beforeListen };
}

describe('pullMany on the embedded default', () => {
  it('one missing resource and one wrong folder fail in their results; the rest load intact', async () => {
    const b = await batch(5);
    const requests: PullRequest[] = [
      ...b.requests.slice(0, 2),
      { folder: 'models', name: 'missing.bin', to: join(b.out, 'missing.bin') },
      ...b.requests.slice(2, 4),
      { folder: 'no-such-folder', name: 'm4.bin', to: join(b.out, 'wrong-folder.bin') },
      b.requests[4] as PullRequest,
    ];
    const device = await signedIn(b.api, DEVICE_USER);
    const results = await pullMany(device, requests, { ...auth, concurrency: 3 });
    expect(results.map((r) => [r.name, r.ok])).toEqual([
      ['m0.bin', true],
      ['m1.bin', true],
      ['missing.bin', false],
      ['m2.bin', true],
      ['m3.bin', true],
      ['m4.bin', false],
      ['m4.bin', true],
    ]);
    for (const r of results) {
      if (!r.ok) {
        expect(r.error.code).toBe('ERR_NOT_FOUND');
        expect(r.error.message).not.toContain(PASSWORD);
        continue;
      }
      expect(r.fromCache).toBe(false);
      expect(r.size).toBe(b.sizes.get(r.name));
      expect(sha(await readFile(r.to))).toBe(b.shas.get(r.name));
    }
    // Neither a file nor a temp file for the two that failed.
    expect((await readdir(b.out)).sort()).toEqual([
      'm0.bin',
      'm1.bin',
      'm2.bin',
      'm3.bin',
      'm4.bin',
    ]);
  });

  it('keeps API requests and big-part connections within the limits shared by the batch', async () => {
    const counter = inFlight(25);
    const b = await batch(6, { beforeListen: counter.beforeListen });
    const device = await signedIn(b.api, DEVICE_USER);
    const results = await pullMany(device, b.requests, {
      ...auth,
      concurrency: 6,
      apiConcurrency: 2,
      cdnConcurrency: 3,
    });
    expect(results.every((r) => r.ok)).toBe(true);
    // Six resources at once would put six envelopes and (4+ chunks each) 24+ ranges in flight.
    expect(counter.peak.envelope).toBe(2);
    expect(counter.peak.big).toBe(3);
    expect(b.api.hitCount('POST /cdn-config')).toBe(0); // the embedded default needs no CDN keys
  });

  it('aggregate progress never goes back and ends at the total, failures included', async () => {
    const b = await batch(4);
    const device = await signedIn(b.api, DEVICE_USER);
    const events: PullManyProgress[] = [];
    const requests = [
      ...b.requests,
      { folder: 'models', name: 'missing.bin', to: join(b.out, 'missing.bin') },
    ];
    const results = await pullMany(device, requests, {
      ...auth,
      concurrency: 2,
      onProgress: (p) => events.push(p),
    });
    expect(results.filter((r) => r.ok)).toHaveLength(4);
    let loaded = 0;
    let settled = 0;
    for (const e of events) {
      expect(e.loaded).toBeGreaterThanOrEqual(loaded);
      expect(e.loaded).toBeLessThanOrEqual(e.total);
      expect(e.settled).toBeGreaterThanOrEqual(settled);
      expect(e.count).toBe(5);
      loaded = e.loaded;
      settled = e.settled;
    }
    const last = events.at(-1) as PullManyProgress;
    // Sealed-blob bytes: each plaintext padded to the next 16 bytes plus a 16-byte IV.
    const sealed = [...b.sizes.values()].reduce(
      (a, n) => a + 16 + (Math.floor(n / 16) + 1) * 16,
      0,
    );
    expect(last).toMatchObject({ loaded: sealed, total: sealed, settled: 5, failed: 1 });
    // One settling event per resource, carrying its result; per-resource progress ends at its size.
    const settling = events.filter((e) => e.result !== undefined);
    expect(settling.map((e) => e.index).sort()).toEqual([0, 1, 2, 3, 4]);
    for (const e of settling) {
      if (e.result?.ok) expect(e.resource.loaded).toBe(e.resource.total);
    }
  });

  it('an abort cancels every load, rejects with ERR_ABORTED and leaves no file', async () => {
    const counter = inFlight(40);
    const b = await batch(6, { beforeListen: counter.beforeListen });
    const device = await signedIn(b.api, DEVICE_USER);
    const ac = new AbortController();
    const err = await rejection(
      pullMany(device, b.requests, {
        ...auth,
        concurrency: 3,
        signal: ac.signal,
        // Abort as soon as the first bytes are decrypted: every big part is then still coming.
        onProgress: (p) => {
          if (p.loaded > 0) ac.abort();
        },
      }),
    );
    expect(err.code).toBe('ERR_ABORTED');
    expect(await readdir(b.out)).toEqual([]);
    const requestsAtAbort = [...b.api.hits.values()].reduce((a, n) => a + n, 0);
    await new Promise((r) => setTimeout(r, 300));
    expect([...b.api.hits.values()].reduce((a, n) => a + n, 0)).toBe(requestsAtAbort);
    // Fewer envelopes than resources: the queued ones never started.
    expect(counter.peak.envelope).toBeLessThanOrEqual(3);
    expect(
      [...b.api.hits].filter(([k]) => k.startsWith('POST /resources/get/')).length,
    ).toBeLessThan(6);
  });

  it('a session that has not signed in yet logs in once for the whole batch', async () => {
    const b = await batch(4);
    const device = new Session({ apiUrl: b.api.url });
    device.setCredentials(DEVICE_USER, PASSWORD);
    const logins = b.api.hitCount('POST /login');
    const results = await pullMany(device, b.requests, { ...auth, concurrency: 4 });
    expect(results.every((r) => r.ok)).toBe(true);
    expect(b.api.hitCount('POST /login')).toBe(logins + 1);
    expect(b.api.hitCount('POST /token/refresh')).toBe(0);
  });

  it('a second batch with the cache verifies and decrypts from it without fetching a big part', async () => {
    const b = await batch(3);
    const cacheDir = join(b.out, '..', 'cache');
    const device = await signedIn(b.api, DEVICE_USER);
    const first = await pullMany(device, b.requests, { ...auth, cacheDir });
    expect(first.map((r) => r.ok && r.fromCache)).toEqual([false, false, false]);
    const bigBefore = [...b.api.hits].filter(([k]) => k.endsWith('/big'));
    const again = b.requests.map((r) => ({ ...r, to: `${r.to}.again` }));
    const second = await pullMany(device, again, { ...auth, cacheDir });
    expect(second.map((r) => r.ok && r.fromCache)).toEqual([true, true, true]);
    expect([...b.api.hits].filter(([k]) => k.endsWith('/big'))).toEqual(bigBefore);
    for (const r of second) expect(sha(await readFile(r.to))).toBe(b.shas.get(r.name));
  });
});
