// Faults between a device and the resource API (embedded default: the API serves big parts over
// HTTP ranges). A FaultProxy sits between the client and the real server; each test injects one
// fault and checks that the pull ends as a complete verified file or as a typed error with nothing
// at the destination, and that the server still serves a normal pull afterwards.
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { SIGNING_KEY_FILE } from '@sluice/server';
import { describe, expect, it } from 'vitest';
import { MiB, PASSWORD, startForTest } from '../apiServer.js';
import type { Fault } from './faultProxy.js';
import {
  bigGets,
  bigPart,
  CHUNK,
  entries,
  expectServes,
  expectVerified,
  gate,
  proxyFor,
  pullModel,
  pushedWorld,
  rejection,
  sessionAt,
} from './faultWorld.js';

const SIZE = 2 * MiB + 5000;

describe('faults between the client and the API', () => {
  it('connection reset in the middle of a chunk: the chunk is fetched again, the file verifies', async () => {
    const w = await pushedWorld(SIZE);
    const proxy = await proxyFor(w.api.url);
    let cut = 0;
    proxy.rule = (r) => {
      // The third range is cut after 100 KiB of its 256 KiB, once.
      if (r.range?.startsWith(`bytes=${2 * CHUNK}-`) && cut++ === 0) {
        return { kind: 'reset', afterBytes: 100 * 1024 };
      }
      return undefined;
    };
    const device = await sessionAt(proxy.url);
    const out = join(w.work, 'out.bin');
    const r = await pullModel(device, out);
    expect(r.size).toBe(SIZE);
    await expectVerified(out, w.plain);
    const third = bigGets(proxy).filter((e) => e.range?.startsWith(`bytes=${2 * CHUNK}-`));
    expect(third.map((e) => e.action)).toEqual(['reset', 'pass']);
    expect(third[0]?.responseBytes).toBe(100 * 1024);
    expect(await entries(w.work)).toEqual(['out.bin', 'src.bin']);
    await expectServes(w.api, w.plain);
  });

  it('a chunk cut on every attempt: ERR_NETWORK after the retries, no file, no temp file', async () => {
    const w = await pushedWorld(SIZE);
    const proxy = await proxyFor(w.api.url);
    proxy.rule = (r) =>
      r.range?.startsWith(`bytes=${CHUNK}-`) ? { kind: 'reset', afterBytes: 1000 } : undefined;
    const device = await sessionAt(proxy.url);
    const err = await rejection(pullModel(device, join(w.work, 'out.bin')));
    expect(err.code).toBe('ERR_NETWORK');
    expect(err.message).toContain('5 attempts');
    expect(err.message).not.toContain(PASSWORD);
    expect(bigGets(proxy).filter((e) => e.action === 'reset')).toHaveLength(5);
    expect(await entries(w.work)).toEqual(['src.bin']);
    await expectServes(w.api, w.plain);
  });

  it('a storm of 503 and 500 answers on the big part: retried with backoff, the file verifies', async () => {
    const w = await pushedWorld(SIZE);
    const proxy = await proxyFor(w.api.url);
    // Every range is answered 503, then 500, then served: 2 failures per range, 4 ranges at once.
    const tries = new Map<string, number>();
    proxy.rule = (r) => {
      if (!r.path.endsWith('/big')) return undefined;
      const n = tries.get(r.range ?? '') ?? 0;
      tries.set(r.range ?? '', n + 1);
      return n < 2 ? { kind: 'status', status: n === 0 ? 503 : 500 } : undefined;
    };
    const device = await sessionAt(proxy.url);
    const out = join(w.work, 'out.bin');
    await pullModel(device, out);
    await expectVerified(out, w.plain);
    const gets = bigGets(proxy);
    const chunks = Math.ceil((await bigPart(w.api)).length / CHUNK);
    expect(gets.filter((e) => e.status === 503)).toHaveLength(chunks);
    expect(gets.filter((e) => e.status === 500)).toHaveLength(chunks);
    expect(gets.filter((e) => e.status === 206)).toHaveLength(chunks);
    // Backoff: a range that failed is not asked again at once (first delay ≥ 50 ms: 100 × ½).
    for (const failedGet of gets.filter((e) => e.action === 'status')) {
      const next = gets.find((e) => e.n > failedGet.n && e.range === failedGet.range);
      expect(next, `retry of ${failedGet.range}`).toBeDefined();
      expect((next?.at ?? 0) - failedGet.at).toBeGreaterThanOrEqual(45);
    }
    await expectServes(w.api, w.plain);
  });

  it('the envelope request answered 503: ERR_SERVER, nothing fetched, nothing written', async () => {
    const w = await pushedWorld(SIZE);
    const proxy = await proxyFor(w.api.url);
    proxy.rule = (r) =>
      r.path === '/resources/get/models' ? { kind: 'status', status: 503 } : undefined;
    const device = await sessionAt(proxy.url);
    const err = await rejection(pullModel(device, join(w.work, 'out.bin')));
    expect([err.code, (err as { status?: number }).status]).toEqual(['ERR_SERVER', 503]);
    expect(bigGets(proxy)).toHaveLength(0);
    expect(await entries(w.work)).toEqual(['src.bin']);
    await expectServes(w.api, w.plain);
  });

  const broken: [string, (body: number) => Fault, string][] = [
    [
      'a wrong Content-Range',
      () => ({
        kind: 'rewrite',
        headers: (h) => ({ ...h, 'content-range': `bytes 0-${CHUNK - 1}/${SIZE}` }),
      }),
      'ERR_CDN',
    ],
    ['a flipped bit in a chunk', () => ({ kind: 'corrupt', at: 777 }), 'ERR_CHUNK_DIGEST'],
  ];
  for (const [what, fault, code] of broken) {
    it(`the big part answered with ${what}: ${code}, no file, no temp file`, async () => {
      const w = await pushedWorld(SIZE);
      const proxy = await proxyFor(w.api.url);
      proxy.rule = (r) => (r.range?.startsWith(`bytes=${3 * CHUNK}-`) ? fault(CHUNK) : undefined);
      const device = await sessionAt(proxy.url);
      const err = await rejection(pullModel(device, join(w.work, 'out.bin')));
      expect(err.code).toBe(code);
      expect(await entries(w.work)).toEqual(['src.bin']);
      await expectServes(w.api, w.plain);
    });
  }

  it('a stalled body and the caller aborting: ERR_ABORTED at once, no file, no temp file', async () => {
    const w = await pushedWorld(SIZE);
    const proxy = await proxyFor(w.api.url);
    proxy.rule = (r) =>
      r.range?.startsWith(`bytes=${CHUNK}-`) ? { kind: 'stall', afterBytes: 4096 } : undefined;
    const device = await sessionAt(proxy.url);
    const controller = new AbortController();
    const pulling = rejection(
      pullModel(device, join(w.work, 'out.bin'), { signal: controller.signal }),
    );
    await proxy.waitFor('the stalled chunk', () =>
      bigGets(proxy).some((e) => e.action === 'stall' && e.responseBytes === 4096),
    );
    controller.abort(new Error('user gave up'));
    const err = await pulling;
    expect(err.code).toBe('ERR_ABORTED');
    expect(await entries(w.work)).toEqual(['src.bin']);
    await expectServes(w.api, w.plain);
  });

  it('the API goes down after the envelope and comes back on the same port: the pull completes', async () => {
    const w = await pushedWorld(SIZE);
    const proxy = await proxyFor(w.api.url);
    const closed = gate();
    const back = gate();
    let state: 'up' | 'down' | 'back' = 'up';
    let bigSeen = 0;
    proxy.rule = (r) => {
      if (!r.path.endsWith('/big')) return undefined;
      if (state === 'up')
        return ++bigSeen === 3 ? { kind: 'hold', until: closed.opened } : undefined;
      // While down, let the client meet the dead server twice, then hold its retries until the API
      // is back (so the outcome does not depend on how long the restart takes).
      const refused = proxy.log.filter((e) => e.action === 'refused').length;
      return state === 'down' && refused >= 2 ? { kind: 'hold', until: back.opened } : undefined;
    };
    const device = await sessionAt(proxy.url);
    const out = join(w.work, 'out.bin');
    const pulling = pullModel(device, out, { concurrency: 1 });
    await proxy.waitFor('the third range held', (log) => log.some((e) => e.action === 'hold'));
    await w.api.close();
    state = 'down';
    closed.open();
    await proxy.waitFor(
      'two refused requests',
      (log) => log.filter((e) => e.action === 'refused').length >= 2,
    );
    const again = await startForTest({ dataDir: w.api.dataDir, port: w.api.port });
    state = 'back';
    back.open();
    await pulling;
    await expectVerified(out, w.plain);
    expect(await entries(w.work)).toEqual(['out.bin', 'src.bin']);
    // Every range was served once in the end; the envelope was fetched only once.
    const served = bigGets(proxy).filter((e) => e.status === 206);
    const chunks = Math.ceil((await bigPart(again)).length / CHUNK);
    expect(new Set(served.map((e) => e.range)).size).toBe(chunks);
    expect(proxy.requests('POST', '/resources/get/')).toHaveLength(1);
    await expectServes(again, w.plain);
  });

  it('the API restarts with a new signing key mid-pull: the 401 is met by one re-authentication', async () => {
    const w = await pushedWorld(SIZE);
    const proxy = await proxyFor(w.api.url);
    const back = gate();
    let bigSeen = 0;
    proxy.rule = (r) =>
      r.path.endsWith('/big') && ++bigSeen === 3 ? { kind: 'hold', until: back.opened } : undefined;
    const device = await sessionAt(proxy.url);
    const out = join(w.work, 'out.bin');
    const pulling = pullModel(device, out, { concurrency: 1 });
    await proxy.waitFor('the third range held', (log) => log.some((e) => e.action === 'hold'));
    await w.api.close();
    await unlink(join(w.api.dataDir, SIGNING_KEY_FILE));
    const again = await startForTest({ dataDir: w.api.dataDir, port: w.api.port });
    back.open();
    await pulling;
    await expectVerified(out, w.plain);
    const gets = bigGets(proxy);
    const refused = gets.filter((e) => e.status === 401);
    expect(refused).toHaveLength(1);
    // The refused range came again with a new token, after exactly one renewal.
    const renewals = proxy.log.filter(
      (e) => (e.path === '/token/refresh' || e.path === '/login') && e.n > (refused[0]?.n ?? 0),
    );
    expect(renewals).toHaveLength(1);
    const retried = gets.find((e) => e.n > (refused[0]?.n ?? 0) && e.range === refused[0]?.range);
    expect(retried?.status).toBe(206);
    expect(retried?.authorization).not.toBe(refused[0]?.authorization);
    await expectServes(again, w.plain);
  });

  it('the access token expires in the middle of a pull: the range it expired on is refused, renewed once and retried, completes', async () => {
    const w = await pushedWorld(SIZE, { accessTokenTtlSeconds: 2 });
    const proxy = await proxyFor(w.api.url);
    const device = await sessionAt(proxy.url);
    // The third range waits until the token it carries has expired.
    const expiryOf = (authorization: string | undefined) => {
      const payload = (authorization ?? '').split('.')[1] ?? '';
      const { exp } = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { exp: number };
      return new Promise((r) => setTimeout(r, Math.max(0, exp * 1000 - Date.now()) + 50));
    };
    let bigSeen = 0;
    proxy.rule = (r) =>
      r.path.endsWith('/big') && ++bigSeen === 3
        ? { kind: 'hold', until: expiryOf(r.headers.authorization) }
        : undefined;
    const out = join(w.work, 'out.bin');
    await pullModel(device, out, { concurrency: 1 });
    await expectVerified(out, w.plain);
    const gets = bigGets(proxy);
    // The third range is the one the rule held (the proxy logs the action it ended with).
    const held = gets[2];
    const tokens = new Set(gets.map((e) => e.authorization));
    expect(tokens.size).toBeGreaterThanOrEqual(2);
    // The server checks `exp` exactly (issue 11): the held range reaches it with an expired token
    // and is refused; the client renews through the refresh route and sends that range again.
    expect(gets.filter((e) => e.status !== 206).map((e) => [e.n, e.status])).toEqual([
      [held?.n, 401],
    ]);
    const next = gets.find((e) => e.n > (held?.n ?? 0));
    expect(next?.range).toBe(held?.range);
    expect(next?.status).toBe(206);
    expect(next?.authorization).not.toBe(held?.authorization);
    expect(proxy.requests('POST', '/token/refresh').length).toBeGreaterThanOrEqual(1);
    await expectServes(w.api, w.plain);
  });

  it('connection refused (the API address is dead): ERR_NETWORK naming the URL, no file', async () => {
    const w = await pushedWorld(SIZE);
    const proxy = await proxyFor(w.api.url);
    const device = await sessionAt(proxy.url);
    await proxy.close();
    const err = await rejection(pullModel(device, join(w.work, 'out.bin')));
    expect(err.code).toBe('ERR_NETWORK');
    expect(err.message).toContain(proxy.url);
    expect(await entries(w.work)).toEqual(['src.bin']);
    await expectServes(w.api, w.plain);
  });
});
