// `sluice pull --cache DIR` with a cache that cannot be used, as a user runs it (the built binary
// against the real server on loopback): the pull completes from the network with one warning
// line on stderr, and `sluice cache verify` says why the cache is unusable. We run as root,
// which ignores mode bits: what really fails for root is a read-only mount and a full tmpfs.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { push, Session } from '@sluice/core';
import { createServer, initAdmin, type SluiceServer } from '@sluice/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunResult, run } from '../test-cli.js';

const ADMIN = 'admin@example.com';
const PASSWORD = 'correct horse battery staple';
const HARDWARE = 'd'.repeat(64);
const MiB = 1024 * 1024;
const root = process.getuid?.() === 0;

const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-unusable-cache-'));
const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts.splice(0)) {
    execFileSync('umount', [m]);
    rmdirSync(m);
  }
  rmSync(dir, { recursive: true, force: true });
});

let server: SluiceServer;
afterAll(async () => {
  await server?.close();
});

// 3 MiB: a big part of about 2.1 MiB in 256 KiB chunks, more than the 1 MiB disk below holds.
const model = randomBytes(3 * MiB);
const config = join(dir, 'config');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  const dataDir = join(dir, 'data');
  const scrypt = { logN: 12, r: 8, p: 1 };
  await initAdmin(dataDir, ADMIN, PASSWORD, { scrypt });
  server = await createServer({ dataDir, scrypt });
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  const session = new Session({ apiUrl: url });
  session.setCredentials(ADMIN, PASSWORD);
  await session.login();
  const src = join(dir, 'm.src');
  writeFileSync(src, model);
  await push(session, 'models', 'm.bin', src, { chunkSize: 256 * 1024 });
  rmSync(src);
  const login = await sluice(['login', '--server', url, '--email', ADMIN]);
  expect(login.code, login.stderr).toBe(0);
});

function sluice(args: string[]): Promise<RunResult> {
  return run(args, {
    env: {
      SLUICE_CONFIG_DIR: config,
      SLUICE_PASSWORD: PASSWORD,
      SLUICE_HARDWARE_HASH: HARDWARE,
      XDG_CACHE_HOME: join(dir, 'xdg'),
      SLUICE_CACHE_MAX: undefined,
    },
  });
}

/** A tmpfs of `size` mounted under the test dir (read-only with `ro`), unmounted after the file. */
function mounted(size: string, ro = false): string {
  const at = mkdtempSync(join(dir, 'mnt-'));
  execFileSync('mount', [
    '-t',
    'tmpfs',
    '-o',
    `size=${size},mode=0700${ro ? ',ro' : ''}`,
    'tmpfs',
    at,
  ]);
  mounts.push(at);
  return at;
}

let pulls = 0;
/** `sluice pull` through `cache`: it succeeds, the output verifies; its one warning line. */
async function pullWarns(cache: string): Promise<string> {
  const out = join(dir, `out-${++pulls}.bin`);
  const r = await sluice(['pull', 'models', 'm.bin', '-o', out, '--cache', cache]);
  expect(r.code, r.stderr).toBe(0);
  expect(sha(readFileSync(out))).toBe(sha(model));
  rmSync(out);
  const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning:'));
  expect(warnings, r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(/pulled models\/m\.bin v1 → /);
  expect(r.stderr).not.toContain(PASSWORD);
  return warnings[0] as string;
}

/** `sluice cache verify --cache DIR`: exit 1 and the cause, in text and in JSON. */
async function verifySays(cache: string, kind: string): Promise<void> {
  const text = await sluice(['cache', 'verify', '--cache', cache]);
  expect(text.code, text.stderr).toBe(1);
  expect(text.stderr).toContain(`cache ${cache} is unusable (${kind}`);
  expect(text.stderr).toContain('pulls with this cache go on without it');
  const json = await sluice(['cache', 'verify', '--json', '--cache', cache]);
  expect(json.code).toBe(1);
  expect(JSON.parse(json.stdout).unusable.kind).toBe(kind);
}

describe('sluice pull --cache DIR that cannot be used', () => {
  it('a regular file: the pull completes with one warning; cache verify says "not a directory"', async () => {
    const file = join(dir, 'cache-file');
    writeFileSync(file, 'mine');
    expect(await pullWarns(file)).toBe(
      `warning: cache ${file} is unusable (not a directory: it is a file); pulling without it`,
    );
    expect(readFileSync(file, 'utf8')).toBe('mine');
    await verifySays(file, 'not a directory');
  });

  it('a path under a regular file: one warning; cache verify says "cannot create"', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    const cache = join(file, 'cache');
    expect(await pullWarns(cache)).toContain('is unusable (cannot create: ENOTDIR');
    await verifySays(cache, 'cannot create');
  });

  it.skipIf(!root)(
    'a read-only mount: one warning (EROFS); cache verify says "read-only"',
    async () => {
      const ro = mounted('4m', true);
      expect(await pullWarns(ro)).toBe(
        `warning: cache ${ro} is unusable (read-only: EROFS); pulling without it`,
      );
      expect(readdirSync(ro)).toEqual([]);
      await verifySays(ro, 'read-only');
    },
  );

  it.skipIf(!root)(
    'the cache disk fills up mid-pull: one warning (ENOSPC), no entry left; a full disk is "no space"',
    async () => {
      const disk = mounted('1m');
      const cache = join(disk, 'cache');
      expect(await pullWarns(cache)).toBe(
        `warning: cache ${cache} is unusable (no space: ENOSPC); pulling without it`,
      );
      expect(readdirSync(cache).filter((n) => n.includes('.big'))).toEqual([]);
      // The partial entry is gone, so verify finds a usable (empty) cache…
      const ok = await sluice(['cache', 'verify', '--cache', cache]);
      expect(ok.code, ok.stderr).toBe(0);
      // …until the disk is full.
      try {
        writeFileSync(join(disk, 'filler'), Buffer.alloc(2 * MiB));
      } catch {}
      await verifySays(cache, 'no space');
      expect(await pullWarns(cache)).toContain('(no space: ENOSPC)');
    },
  );

  it('a usable cache gives no warning and is used the second time', async () => {
    const cache = join(dir, 'good-cache');
    mkdirSync(cache);
    for (const fromCache of [false, true]) {
      const r = await sluice([
        'pull',
        'models',
        'm.bin',
        '-o',
        join(dir, 'good.bin'),
        '--cache',
        cache,
        '--json',
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toContain('warning:');
      expect(JSON.parse(r.stdout).fromCache).toBe(fromCache);
    }
    const v = await sluice(['cache', 'verify', '--json', '--cache', cache]);
    expect(v.code, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ unusable: null, ok: 1 });
  });
});
