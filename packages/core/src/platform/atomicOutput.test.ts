import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test-helpers.js';
import { type AnonymousOps, anonymousOps, atomicOutput, openOutputFile } from './atomicOutput.js';

const linux = process.platform === 'linux' && anonymousOps() !== null;

describe('atomicOutput', () => {
  it.runIf(linux)(
    'writes through a file with no name until it is complete (O_TMPFILE)',
    async () => {
      const dir = await tempDir();
      const dst = join(dir, 'model.bin');
      const seen = await atomicOutput([dst], {}, async ([path]) => {
        await writeFile(path as string, 'plaintext');
        return { path, names: await readdir(dir) };
      });
      expect(seen.path).toMatch(/^\/proc\/self\/fd\/\d+$/);
      expect(seen.names).toEqual([]);
      expect(await readFile(dst, 'utf8')).toBe('plaintext');
      expect((await stat(dst)).mode & 0o777).toBe(0o600);
      expect(await readdir(dir)).toEqual(['model.bin']);
    },
  );

  it('leaves the destination as it was and no file beside it when the write fails', async () => {
    const dir = await tempDir();
    const dst = join(dir, 'model.bin');
    await writeFile(dst, 'old');
    await expect(
      atomicOutput([dst], {}, async ([path]) => {
        await writeFile(path as string, 'half');
        throw new Error('broke off');
      }),
    ).rejects.toThrow('broke off');
    expect(await readdir(dir)).toEqual(['model.bin']);
    expect(await readFile(dst, 'utf8')).toBe('old');
  });
});

describe('openOutputFile', () => {
  it.runIf(linux)('an fs error on the anonymous output names the destination', async () => {
    const dir = await tempDir();
    const dst = join(dir, 'model.bin');
    const failure = atomicOutput([dst], {}, async ([path]) => {
      await mkdir(path as string); // EEXIST, about the output's own path
    });
    await expect(failure).rejects.toMatchObject({ code: 'ERR_IO', path: dst });
  });

  it('without the addon: a named owner-only temp beside the destination, removed by discard', async () => {
    const dir = await tempDir();
    const out = await openOutputFile(join(dir, 'x.bin'), null);
    expect(out.anonymous).toBe(false);
    expect(await readdir(dir)).toEqual([out.path.slice(dir.length + 1)]);
    expect((await stat(out.path)).mode & 0o777).toBe(0o600);
    await out.discard();
    expect(await readdir(dir)).toEqual([]);
  });

  it('falls back to a named temp where the filesystem refuses O_TMPFILE', async () => {
    const dir = await tempDir();
    const refusing: AnonymousOps = {
      openAnonymous: () =>
        Promise.reject(Object.assign(new Error('not supported'), { code: 'ERR_IO', errno: 95 })),
      linkAnonymous: () => Promise.reject(new Error('not reached')),
    };
    const out = await openOutputFile(join(dir, 'x.bin'), refusing);
    expect(out.anonymous).toBe(false);
    await out.discard();
  });

  it('passes any other failure to open on (a missing directory is not hidden)', async () => {
    const dir = await tempDir();
    const missing: AnonymousOps = {
      openAnonymous: () =>
        Promise.reject(Object.assign(new Error('no such dir'), { code: 'ERR_IO', errno: 2 })),
      linkAnonymous: () => Promise.reject(new Error('not reached')),
    };
    // Not a fallback to a named temp: the failure, naming the missing directory, with its cause.
    await expect(openOutputFile(join(dir, 'no', 'x.bin'), missing)).rejects.toMatchObject({
      code: 'ERR_IO',
      message: `cannot write ${join(dir, 'no', 'x.bin')}: directory ${join(dir, 'no')} does not exist`,
      cause: { message: 'no such dir' },
    });
  });

  it.runIf(linux)(
    'a discarded anonymous output leaves nothing, even after it was named',
    async () => {
      const dir = await tempDir();
      const out = await openOutputFile(join(dir, 'x.bin'));
      expect(out.anonymous).toBe(true);
      await writeFile(out.path, 'data');
      const named = await out.name();
      expect(await readdir(dir)).toEqual([named.slice(dir.length + 1)]);
      await out.discard();
      expect(await readdir(dir)).toEqual([]);
    },
  );

  it('names the destination and its missing directory, not a temp file, both ways', async () => {
    const dir = await tempDir();
    const dst = join(dir, 'missing', 'model.bin');
    const message = `cannot write ${dst}: directory ${join(dir, 'missing')} does not exist`;
    for (const ops of [anonymousOps(), null]) {
      await expect(
        atomicOutput([dst], {}, async () => {}),
        String(ops),
      ).rejects.toMatchObject({
        code: 'ERR_IO',
        message,
      });
      await expect(openOutputFile(dst, ops)).rejects.toMatchObject({ code: 'ERR_IO', message });
    }
    expect(await readdir(dir)).toEqual([]);
  });
});
