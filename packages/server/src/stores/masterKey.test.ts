import { randomBytes } from 'node:crypto';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '../test-helpers.js';
import {
  dataKeyAad,
  loadOrCreateMasterKey,
  MASTER_KEY_FILE,
  unwrapDataKey,
  wrapDataKey,
} from './masterKey.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map(removeDir));
});
async function dir(): Promise<string> {
  const d = await tempDir();
  dirs.push(d);
  return d;
}

describe('master key', () => {
  it('is created once, 32 bytes, mode 0600, and never overwritten', async () => {
    const d = await dir();
    const [a, b] = await Promise.all([loadOrCreateMasterKey(d), loadOrCreateMasterKey(d)]);
    expect(a).toHaveLength(32);
    expect(b).toEqual(a);
    expect((await stat(join(d, MASTER_KEY_FILE))).mode & 0o777).toBe(0o600);
    expect(await loadOrCreateMasterKey(d)).toEqual(a);
    expect(await readFile(join(d, MASTER_KEY_FILE))).toEqual(a);
  });

  it('refuses a key file group or others can read, and one of the wrong size', async () => {
    const d = await dir();
    await loadOrCreateMasterKey(d);
    await chmod(join(d, MASTER_KEY_FILE), 0o640);
    await expect(loadOrCreateMasterKey(d)).rejects.toThrow(/chmod 600/);
    const e = await dir();
    await writeFile(join(e, MASTER_KEY_FILE), randomBytes(16), { mode: 0o600 });
    await expect(loadOrCreateMasterKey(e)).rejects.toThrow(/16 bytes/);
  });

  it('wraps data keys bound to resource and version; other key or aad fails', () => {
    const master = randomBytes(32);
    const dataKey = randomBytes(32);
    const wrapped = wrapDataKey(master, dataKey, dataKeyAad('r1', 1));
    expect(wrapped).not.toContain(dataKey.toString('base64url'));
    expect(wrapDataKey(master, dataKey, dataKeyAad('r1', 1))).not.toBe(wrapped);
    expect(unwrapDataKey(master, wrapped, dataKeyAad('r1', 1))).toEqual(dataKey);
    expect(() => unwrapDataKey(master, wrapped, dataKeyAad('r1', 2))).toThrow();
    expect(() => unwrapDataKey(master, wrapped, dataKeyAad('r2', 1))).toThrow();
    expect(() => unwrapDataKey(randomBytes(32), wrapped, dataKeyAad('r1', 1))).toThrow();
    // Replace the second-to-last character with another one (comparing that character itself:
    // comparing the last one left the string unchanged whenever the two differed and it was 'A').
    const flipped = `${wrapped.slice(0, -2)}${wrapped.at(-2) === 'A' ? 'B' : 'A'}${wrapped.slice(-1)}`;
    expect(flipped).not.toBe(wrapped);
    expect(() => unwrapDataKey(master, flipped, dataKeyAad('r1', 1))).toThrow();
  });
});
