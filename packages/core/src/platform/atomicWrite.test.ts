import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test-helpers.js';
import { isTempFileOf } from './atomicOutput.js';
import { writeFileAtomic } from './atomicWrite.js';

describe('writeFileAtomic', () => {
  it('replaces a file with the given mode and leaves no temp file', async () => {
    const dir = await tempDir();
    const path = join(dir, 'config.json');
    await writeFile(path, 'old', { mode: 0o644 });
    await writeFileAtomic(path, 'new', { mode: 0o600 });
    expect(await readFile(path, 'utf8')).toBe('new');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['config.json']);
  });

  it('exclusive: refuses an existing file with EEXIST and keeps it', async () => {
    const dir = await tempDir();
    const path = join(dir, 'key');
    await writeFileAtomic(path, 'first', { exclusive: true });
    await expect(writeFileAtomic(path, 'second', { exclusive: true })).rejects.toMatchObject({
      code: 'EEXIST',
    });
    expect(await readFile(path, 'utf8')).toBe('first');
    expect(await readdir(dir)).toEqual(['key']);
  });

  it('removes the temp files of writers that died, not those of live ones', async () => {
    const dir = await tempDir();
    const path = join(dir, 'state.json');
    const hexPid = (pid: number) => pid.toString(16).padStart(8, '0');
    const dead = `.state.json.sluice-${hexPid(0x7ffffffe)}${'a'.repeat(12)}.tmp`;
    const live = `.state.json.sluice-${hexPid(process.ppid)}${'b'.repeat(12)}.tmp`;
    await writeFile(join(dir, dead), 'partial');
    await writeFile(join(dir, live), 'partial');
    await writeFileAtomic(path, '{}');
    expect((await readdir(dir)).sort()).toEqual([live, 'state.json'].sort());
    expect(isTempFileOf(path, live)).toBe(true);
    expect(isTempFileOf(path, 'state.json')).toBe(false);
  });
});
