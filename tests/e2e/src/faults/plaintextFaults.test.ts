// A device keeps no usable plaintext anywhere but where the runtime reads it (DESIGN.md): a pull
// SIGKILLed part-way — no `finally` runs — must leave no file holding a plaintext block, neither
// beside the destination nor in the temp directory.
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEVICE_USER, PASSWORD, tempDir } from '../apiServer.js';
import { sluice, sluiceOk } from './cliChild.js';
import { bigGets, CHUNK, gate, HW, onCleanup, proxyFor, pushedWorld } from './faultWorld.js';

/** Every regular file below `dir`. */
async function filesBelow(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) found.push(...(await filesBelow(path)));
    else if (e.isFile()) found.push(path);
  }
  return found;
}

/** The files among `dirs` that hold any 64-byte plaintext block of `plain` (sampled every 16 KiB). */
async function holdingPlaintext(dirs: string[], plain: Buffer): Promise<string[]> {
  const holding: string[] = [];
  for (const dir of dirs) {
    for (const file of await filesBelow(dir)) {
      const data = await readFile(file);
      for (let off = 0; off + 64 <= plain.length; off += 16 * 1024) {
        if (data.indexOf(plain.subarray(off, off + 64)) >= 0) {
          holding.push(file);
          break;
        }
      }
    }
  }
  return holding;
}

/** Bytes of the largest file the process `pid` has open below `dir` (named or not). */
async function largestOpenBelow(pid: number, dir: string): Promise<number> {
  let most = 0;
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [])) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    if (!target.startsWith(dir)) continue;
    const size = await stat(`/proc/${pid}/fd/${fd}`).then(
      (s) => s.size,
      () => 0,
    );
    most = Math.max(most, size);
  }
  return most;
}

describe('no plaintext outlives a killed pull', () => {
  // Linux: the test watches the puller's open files through /proc.
  it('a pull SIGKILLed at 40 % leaves no file holding a plaintext block beside the destination or in TMPDIR', async () => {
    const w = await pushedWorld(4 * 1024 * 1024);
    const proxy = await proxyFor(w.api.url);
    const outDir = await tempDir('sluice-plain-out-');
    const tmp = await tempDir('sluice-plain-tmp-');
    const env = {
      SLUICE_CONFIG_DIR: join(w.work, 'config'),
      SLUICE_PASSWORD: PASSWORD,
      SLUICE_HARDWARE_HASH: HW,
      TMPDIR: tmp,
    };
    await sluiceOk(['login', '--server', proxy.url, '--email', DEVICE_USER], env);
    // Ranges up to 40 % of the big part are served; every later one is held until the kill.
    const ranges = Math.ceil(w.plain.length / CHUNK);
    const dead = gate();
    onCleanup(async () => dead.open());
    let served = 0;
    proxy.rule = (r) =>
      r.path.endsWith('/big') && ++served > Math.ceil(ranges * 0.4)
        ? { kind: 'hold', until: dead.opened }
        : undefined;
    const run = sluice(['pull', 'models', 'm.bin', '-o', join(outDir, 'm.bin')], env);
    const pid = run.child.pid as number;
    const deadline = Date.now() + 60_000;
    while ((await largestOpenBelow(pid, outDir)) < w.plain.length * 0.3) {
      if (Date.now() > deadline) throw new Error('the pull never wrote 30 % of its output');
      await new Promise((r) => setTimeout(r, 20));
    }
    run.child.kill('SIGKILL');
    expect((await run.done).signal).toBe('SIGKILL');
    dead.open();
    expect(bigGets(proxy).length).toBeGreaterThan(0);
    expect(await holdingPlaintext([outDir, tmp], w.plain)).toEqual([]);
  });
});
