import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { expectSluiceError, tempDir } from '../test-helpers.js';
import { FileLock, type LockOwner } from './fileLock.js';

const distLock = fileURLToPath(new URL('../../dist/platform/fileLock.js', import.meta.url));

/** A child process that takes the lock at `path` (from the built package), prints 'locked', then holds it for `holdMs` (forever by default). */
function lockingChild(path: string, holdMs = -1): ChildProcess {
  const code = `
    import { FileLock } from ${JSON.stringify(distLock)};
    import { appendFileSync } from 'node:fs';
    const lock = await FileLock.acquire(${JSON.stringify(path)});
    appendFileSync(${JSON.stringify(`${path}.log`)}, 'in ' + process.pid + '\\n');
    console.log('locked');
    if (${holdMs} < 0) setInterval(() => {}, 1000);
    else {
      await new Promise((r) => setTimeout(r, ${holdMs}));
      appendFileSync(${JSON.stringify(`${path}.log`)}, 'out ' + process.pid + '\\n');
      await lock.release();
    }
  `;
  return spawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
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

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.on('exit', (code) => resolve(code));
  });
}

async function ownerOf(path: string): Promise<LockOwner> {
  return JSON.parse(await readFile(path, 'utf8')) as LockOwner;
}

describe('FileLock', () => {
  it('is exclusive until released, and records who holds it', async () => {
    const path = join(await tempDir(), 'a.lock');
    const lock = await FileLock.acquire(path);
    expect(await FileLock.tryAcquire(path)).toBeUndefined();
    const owner = await ownerOf(path);
    expect(owner.pid).toBe(process.pid);
    expect(owner.host).toBe(hostname());
    expect(owner.token).toBe(lock.owner.token);
    await lock.release();
    await lock.release();
    expect(existsSync(path)).toBe(false);
    const again = await FileLock.tryAcquire(path);
    expect(again).toBeDefined();
    await again?.release();
  });

  it('serialises concurrent holders in one process', async () => {
    const path = join(await tempDir(), 'b.lock');
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 5 }, async () => {
        const lock = await FileLock.acquire(path);
        inside++;
        most = Math.max(most, inside);
        await new Promise((r) => setTimeout(r, 20));
        inside--;
        await lock.release();
      }),
    );
    expect(most).toBe(1);
  });

  it('serialises two processes', async () => {
    const path = join(await tempDir(), 'c.lock');
    const a = lockingChild(path, 300);
    const b = lockingChild(path, 300);
    expect(await exited(a)).toBe(0);
    expect(await exited(b)).toBe(0);
    const log = (await readFile(`${path}.log`, 'utf8')).trim().split('\n');
    // in X, out X, in Y, out Y: never both inside.
    expect(log).toHaveLength(4);
    expect(log[0]?.replace('in ', '')).toBe(log[1]?.replace('out ', ''));
    expect(log[2]?.replace('in ', '')).toBe(log[3]?.replace('out ', ''));
    expect(existsSync(path)).toBe(false);
  });

  it('takes over the lock of a process that was killed while holding it', async () => {
    const path = join(await tempDir(), 'd.lock');
    const child = lockingChild(path);
    await printed(child, 'locked');
    const held = await ownerOf(path);
    expect(held.pid).toBe(child.pid);
    // Alive: a waiter must wait.
    expect(await FileLock.tryAcquire(path)).toBeUndefined();
    child.kill('SIGKILL');
    await exited(child);
    const t0 = Date.now();
    const lock = await FileLock.acquire(path);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect((await ownerOf(path)).pid).toBe(process.pid);
    await lock.release();
  });

  it('judges a lock stale when its pid now belongs to another process or the machine rebooted', async () => {
    const path = join(await tempDir(), 'e.lock');
    const live = await FileLock.acquire(join(await tempDir(), 'ref.lock'));
    const base = { ...live.owner, token: 'x'.repeat(24) };
    await live.release();
    // Same pid (alive) but another start time: the pid was reused.
    await writeFile(path, JSON.stringify({ ...base, start: '1' }));
    const a = await FileLock.tryAcquire(path);
    expect(a?.owner.pid).toBe(process.pid);
    await a?.release();
    if (base.boot !== undefined) {
      await writeFile(path, JSON.stringify({ ...base, boot: 'another-boot' }));
      const b = await FileLock.tryAcquire(path);
      expect(b).toBeDefined();
      await b?.release();
    }
    // The same owner exactly: alive, not stale.
    await writeFile(path, JSON.stringify(base));
    expect(await FileLock.tryAcquire(path)).toBeUndefined();
    // From another host: its pid means nothing here, never stale.
    await writeFile(path, JSON.stringify({ ...base, pid: 999_999_999, host: 'elsewhere' }));
    expect(await FileLock.tryAcquire(path)).toBeUndefined();
  });

  it('leaves an unreadable lock alone for a grace period, then takes it over', async () => {
    const path = join(await tempDir(), 'f.lock');
    await writeFile(path, 'not json');
    expect(await FileLock.tryAcquire(path)).toBeUndefined();
    const old = new Date(Date.now() - 60_000);
    await utimes(path, old, old);
    const lock = await FileLock.tryAcquire(path);
    expect(lock).toBeDefined();
    await lock?.release();
  });

  it('stops waiting with ERR_ABORTED when the signal fires, telling who holds the lock', async () => {
    const path = join(await tempDir(), 'g.lock');
    const holder = await FileLock.acquire(path);
    const controller = new AbortController();
    const waits: LockOwner[] = [];
    setTimeout(() => controller.abort(), 200);
    const t0 = Date.now();
    await expectSluiceError(
      FileLock.acquire(path, { signal: controller.signal, onWait: (o) => waits.push(o) }),
      'ERR_ABORTED',
    );
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(waits.map((o) => o.token)).toEqual([holder.owner.token]);
    // The holder still holds it.
    expect((await ownerOf(path)).token).toBe(holder.owner.token);
    await holder.release();
  });

  it('reports a lock it cannot create as ERR_IO', async () => {
    const path = join(await tempDir(), 'missing-dir', 'h.lock');
    await expectSluiceError(FileLock.tryAcquire(path), 'ERR_IO');
  });
});
