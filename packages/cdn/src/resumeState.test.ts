import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { type ResumeIdentity, ResumeState } from './resumeState.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempFile(): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-resume-'));
  dirs.push(dir);
  return { dir, file: join(dir, 'state.json') };
}

const id: ResumeIdentity = { source: 'http://s3/b/k', etag: '"e1"', size: 100, chunkSize: 10 };

describe('ResumeState', () => {
  it('starts empty without a file, and a reopened file gives back the recorded chunks', async () => {
    const { file } = await tempFile();
    const a = await ResumeState.open(file, id);
    expect(a.done.size).toBe(0);
    a.record(3);
    a.record(7);
    await a.flush();
    const b = await ResumeState.open(file, id);
    expect([...b.done].sort()).toEqual([3, 7]);
  });

  it('writes in batches: not before `everyChunks` chunks, at once after', async () => {
    const { file } = await tempFile();
    const s = await ResumeState.open(file, id, { everyChunks: 3, everyMs: 60_000 });
    s.record(0);
    s.record(1);
    await new Promise((r) => setTimeout(r, 20));
    await expect(readFile(file, 'utf8')).rejects.toThrow(/ENOENT/);
    s.record(2);
    // The third record starts the write without anyone calling flush(); it lands soon after.
    await vi.waitFor(
      async () => expect(JSON.parse(await readFile(file, 'utf8')).done).toEqual([0, 1, 2]),
      { timeout: 5000, interval: 10 },
    );
  });

  it('ignores a file of another ETag, size, chunk size or object, and a corrupt one', async () => {
    const { file } = await tempFile();
    const s = await ResumeState.open(file, id);
    s.record(1);
    await s.flush();
    for (const other of [
      { ...id, etag: '"e2"' },
      { ...id, size: 101 },
      { ...id, chunkSize: 20 },
      { ...id, source: 'http://s3/b/other' },
    ]) {
      expect((await ResumeState.open(file, other)).done.size).toBe(0);
    }
    await writeFile(file, '{"version":1,"done":[');
    expect((await ResumeState.open(file, id)).done.size).toBe(0);
  });

  it('drops indexes out of range and leaves no temp files; remove deletes the file', async () => {
    const { dir, file } = await tempFile();
    await writeFile(file, JSON.stringify({ version: 1, ...id, done: [0, 9, 10, -1, 2.5] }));
    const s = await ResumeState.open(file, id);
    expect([...s.done].sort()).toEqual([0, 9]);
    for (let i = 1; i < 9; i++) s.record(i);
    await s.flush();
    expect(await readdir(dir)).toEqual(['state.json']);
    await s.remove();
    s.record(5);
    await s.flush();
    expect(await readdir(dir)).toEqual([]);
  });
});
