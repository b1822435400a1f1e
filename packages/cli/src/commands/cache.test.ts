// `sluice pull --use-cache / --cache` and `sluice cache ls|verify|prune` as a user runs them: the
// built binary in child processes against the real server on loopback (in this process).
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { push, Session } from '@sluice/core';
import { createServer, initAdmin, type SluiceServer } from '@sluice/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finished, type RunResult, run, start } from '../test-cli.js';

const ADMIN = 'admin@example.com';
const PASSWORD = 'correct horse battery staple';
const HARDWARE = 'c'.repeat(64);
const KiB = 1024;
const CHUNK = 64 * KiB;

const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-cache-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let server: SluiceServer;
afterAll(async () => {
  await server?.close();
});

const models = { a: randomBytes(700 * KiB), b: randomBytes(500 * KiB), c: randomBytes(300 * KiB) };
const config = join(dir, 'config');
/** Big-part requests per resource name, as the server saw them. */
const bigGets = new Map<string, number>();
/** While set, big-part requests wait for it: holds a download in progress. */
let gate: Promise<void> | undefined;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  const dataDir = join(dir, 'data');
  const scrypt = { logN: 12, r: 8, p: 1 };
  await initAdmin(dataDir, ADMIN, PASSWORD, { scrypt });
  server = await createServer({ dataDir, scrypt });
  server.app.addHook('onRequest', async (request) => {
    const m = /^\/resources\/models\/([^/]+)\/big/.exec(request.url);
    if (m?.[1] === undefined) return;
    bigGets.set(m[1], (bigGets.get(m[1]) ?? 0) + 1);
    await gate;
  });
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  const session = new Session({ apiUrl: url });
  session.setCredentials(ADMIN, PASSWORD);
  await session.login();
  for (const [name, bytes] of Object.entries(models)) {
    const src = join(dir, `${name}.src`);
    writeFileSync(src, bytes);
    await push(session, 'models', `${name}.bin`, src, { chunkSize: CHUNK });
  }
  const login = await sluice(['login', '--server', url, '--email', ADMIN]);
  expect(login.code, login.stderr).toBe(0);
});

function sluice(args: string[], env: Record<string, string | undefined> = {}): Promise<RunResult> {
  return run(args, { env: clientEnv(env) });
}

function clientEnv(env: Record<string, string | undefined>) {
  return {
    SLUICE_CONFIG_DIR: config,
    SLUICE_PASSWORD: PASSWORD,
    SLUICE_HARDWARE_HASH: HARDWARE,
    XDG_CACHE_HOME: join(dir, 'xdg'),
    SLUICE_CACHE_MAX: undefined,
    ...env,
  };
}

const pullArgs = (name: string, out: string, ...more: string[]) => [
  'pull',
  'models',
  `${name}.bin`,
  '-o',
  join(dir, out),
  '--json',
  ...more,
];

function json(r: RunResult): Record<string, unknown> {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

interface ListedJson {
  digest: string;
  size: number;
  lastUsed: string;
  complete: boolean;
  resource: { folder: string; name: string; version: number } | null;
  status?: string;
  reason?: string;
  removed?: boolean;
}

async function ls(cacheDir: string): Promise<ListedJson[]> {
  const r = await sluice(['cache', 'ls', '--json', '--cache', cacheDir]);
  return json(r).entries as ListedJson[];
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('sluice cache', () => {
  it('pull --use-cache fills $XDG_CACHE_HOME/sluice; two pulls at once download the big part once', async () => {
    // A pull without the cache: how many big-part requests one download takes.
    const ref = bigGets.get('a.bin') ?? 0;
    expect(json(await sluice(pullArgs('a', 'a0.out'))).fromCache).toBe(false);
    const oneDownload = (bigGets.get('a.bin') ?? 0) - ref;
    expect(oneDownload).toBeGreaterThan(3);

    let open: () => void = () => {};
    gate = new Promise((resolve) => {
      open = resolve;
    });
    const before = bigGets.get('a.bin') ?? 0;
    const children = [1, 2].map((i) =>
      start(pullArgs('a', `a${i}.out`, '--use-cache'), { env: clientEnv({}) }),
    );
    const results = children.map((c) => finished(c));
    // One pull holds the entry's lock while its download is held at the gate; the other says it
    // waits. Only then is the download let through.
    await new Promise<void>((resolve) => {
      let seen = '';
      for (const c of children) {
        c.stderr?.on('data', (d: Buffer) => {
          seen += String(d);
          if (seen.includes('waiting for process')) resolve();
        });
      }
    });
    gate = undefined;
    open();
    const [r1, r2] = await Promise.all(results);
    const pulled = [json(r1 as RunResult), json(r2 as RunResult)];
    expect(pulled.map((p) => p.fromCache).sort()).toEqual([false, true]);
    // Each chunk fetched once in all.
    expect((bigGets.get('a.bin') ?? 0) - before).toBe(oneDownload);
    for (const i of [1, 2]) expect(sha(readFileSync(join(dir, `a${i}.out`)))).toBe(sha(models.a));
    const waiter = [r1, r2].find((r) => r?.stderr.includes('waiting for process'));
    expect(waiter?.stderr).toContain(join(dir, 'xdg', 'sluice'));

    const listed = await ls(join(dir, 'xdg', 'sluice'));
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({
      complete: true,
      resource: { folder: 'models', name: 'a.bin', version: 1 },
    });
    // Without --cache, `cache ls` reads the same default cache.
    const text = await sluice(['cache', 'ls']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain((listed[0] as ListedJson).digest.slice(0, 16));
    expect(text.stdout).toContain('models/a.bin v1');
    expect(text.stderr).toContain('1 entry');
  });

  it('without XDG_CACHE_HOME the default cache is ~/.cache/sluice', async () => {
    const home = join(dir, 'home');
    const r = await sluice(pullArgs('c', 'c.out', '--use-cache'), {
      HOME: home,
      XDG_CACHE_HOME: undefined,
    });
    expect(json(r).fromCache).toBe(false);
    // The entry, and the offline leases the pull kept (docs/FORMAT.md §10).
    expect(readdirSync(join(home, '.cache', 'sluice')).sort()).toEqual([
      expect.stringMatching(/\.big$/),
      'leases',
    ]);
    const listed = await sluice(['cache', 'ls', '--json'], {
      HOME: home,
      XDG_CACHE_HOME: undefined,
    });
    expect(json(listed).dir).toBe(join(home, '.cache', 'sluice'));
  });

  it('verify reports a corrupt entry, removes it and exits 1; the next pull fetches it again', async () => {
    const cache = join(dir, 'verify-cache');
    expect(json(await sluice(pullArgs('b', 'b.out', '--cache', cache))).fromCache).toBe(false);
    const [entry] = await ls(cache);
    const path = join(cache, `${entry?.digest}.big`);
    const bytes = readFileSync(path);
    bytes[3 * CHUNK + 5] = (bytes[3 * CHUNK + 5] ?? 0) ^ 0x10;
    writeFileSync(path, bytes);

    const text = await sluice(['cache', 'verify', '--cache', cache]);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain('corrupt');
    expect(text.stdout).toMatch(/chunk 3 of \d+ does not match its digest/);
    expect(text.stdout).toContain('models/b.bin v1');
    expect(text.stderr).toContain('1 corrupt');
    expect(await ls(cache)).toEqual([]);

    const again = json(await sluice(pullArgs('b', 'b.out', '--cache', cache)));
    expect(again.fromCache).toBe(false);
    expect(sha(readFileSync(join(dir, 'b.out')))).toBe(sha(models.b));
    const ok = await sluice(['cache', 'verify', '--json', '--cache', cache]);
    expect(ok.code, ok.stderr).toBe(0);
    const report = JSON.parse(ok.stdout) as { ok: number; corrupt: number; entries: ListedJson[] };
    expect(report).toMatchObject({ ok: 1, corrupt: 0 });
    expect(report.entries[0]).toMatchObject({ status: 'ok', removed: false });
    // A corrupt entry is never served: the pull after a bad verify above re-downloaded it, and
    // one corrupted again now is fetched again, with the right plaintext.
    writeFileSync(path, bytes);
    const third = json(await sluice(pullArgs('b', 'b2.out', '--cache', cache)));
    expect(third.fromCache).toBe(false);
    expect(sha(readFileSync(join(dir, 'b2.out')))).toBe(sha(models.b));
  });

  it('pull --cache-max and cache prune evict the least recently used entries', async () => {
    const cache = join(dir, 'lru-cache');
    for (const name of ['a', 'b', 'c']) {
      expect(json(await sluice(pullArgs(name, `${name}.lru`, '--cache', cache))).fromCache).toBe(
        false,
      );
      await pause(30);
    }
    // a is used again: b is now the least recently used.
    expect(json(await sluice(pullArgs('a', 'a.lru', '--cache', cache))).fromCache).toBe(true);
    const sizes = Object.fromEntries(
      (await ls(cache)).map((e) => [e.resource?.name ?? '', e.size] as const),
    );
    const limit = (sizes['a.bin'] ?? 0) + (sizes['c.bin'] ?? 0);
    const pruned = await sluice(['cache', 'prune', '--cache-max', String(limit), '--cache', cache]);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toContain('models/b.bin v1');
    expect(pruned.stderr).toContain('removed 1 entry');
    expect((await ls(cache)).map((e) => e.resource?.name)).toEqual(['a.bin', 'c.bin']);

    // Pulling b with room for a and b evicts c, now the least recently used.
    await pause(30);
    const room = String((sizes['a.bin'] ?? 0) + (sizes['b.bin'] ?? 0));
    const b = json(await sluice(pullArgs('b', 'b.lru', '--cache', cache, '--cache-max', room)));
    expect(b.fromCache).toBe(false);
    expect((await ls(cache)).map((e) => e.resource?.name).sort()).toEqual(['a.bin', 'b.bin']);

    // $SLUICE_CACHE_MAX is prune's default limit (a goes: b is the more recent); --all empties the cache.
    const env = await sluice(['cache', 'prune', '--json', '--cache', cache], {
      SLUICE_CACHE_MAX: String(sizes['b.bin']),
    });
    expect(json(env)).toMatchObject({ totalBytes: sizes['b.bin'], freedBytes: sizes['a.bin'] });
    const all = json(await sluice(['cache', 'prune', '--all', '--json', '--cache', cache]));
    expect(all).toMatchObject({ totalBytes: 0, freedBytes: sizes['b.bin'] });
    // Every entry is gone; the offline leases stay (without their big parts they open nothing).
    expect(readdirSync(cache)).toEqual(['leases']);
    expect(statSync(cache).isDirectory()).toBe(true);
  });

  it('refuses wrong usage with exit code 2', async () => {
    const misuses = [
      ['cache', 'prune'],
      ['cache', 'sweep'],
      ['cache', 'ls', '--cache-max', '1GiB'],
      ['cache', 'prune', '--all', '--cache-max', '1GiB'],
      ['cache', 'prune', '--cache-max', 'lots'],
      ['pull', 'models', 'a.bin', '--cache', dir, '--use-cache'],
      ['pull', 'models', 'a.bin', '--cache-max', '1GiB'],
    ];
    const results = await Promise.all(misuses.map((args) => sluice(args)));
    results.forEach((r, i) => {
      expect(r.code, `${misuses[i]?.join(' ')}: ${r.stderr}`).toBe(2);
    });
    const help = await sluice(['cache', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: sluice cache ls [--json] [--cache DIR]');
    expect(help.stdout).toContain('sluice cache prune (--cache-max SIZE | --all)');
    const r = await sluice(['pull', 'models', 'a.bin', '--use-cache'], { SLUICE_CACHE_MAX: 'x' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('$SLUICE_CACHE_MAX');
  });

  it('ls and verify of a cache that does not exist report it empty without creating it', async () => {
    const missing = join(dir, 'no-such-cache');
    const listed = await sluice(['cache', 'ls', '--cache', missing]);
    expect(listed.code).toBe(0);
    expect(listed.stderr).toContain('the cache is empty');
    // The old names --dir and --max still work, each saying once that it is deprecated.
    const old = await sluice(['cache', 'prune', '--dir', missing, '--max', '1GB', '--json']);
    expect(old.code, old.stderr).toBe(0);
    expect(JSON.parse(old.stdout)).toMatchObject({ dir: missing, freedBytes: 0 });
    expect(old.stderr.split('\n').filter((l) => l !== '')).toEqual([
      'warning: --dir is deprecated; use --cache',
      'warning: --max is deprecated; use --cache-max',
    ]);
    const both = await sluice(['cache', 'ls', '--dir', missing, '--cache', missing]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('give --cache (or its old name --dir), not both');
    expect((await sluice(['cache', 'verify', '--cache', missing])).code).toBe(0);
    expect(() => statSync(missing)).toThrow();
  });
});
