import { spawn } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { binding, MiB, patternBytes, tempDir } from './helpers.js';

const b = binding();
const tmp = tempDir();
afterAll(() => tmp.cleanup());

function freshDir(name: string): string {
  const dir = tmp.file(name);
  mkdirSync(dir);
  return dir;
}

describe('openAnonymous / linkAnonymous', () => {
  it('writes a file that has no name until it is linked, owner-only', async () => {
    const dir = freshDir('a');
    const fd = await b.openAnonymous(dir);
    try {
      writeSync(fd, Buffer.from('plaintext'));
      expect(readdirSync(dir)).toEqual([]);
      await b.linkAnonymous(fd, join(dir, 'out'));
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(join(dir, 'out'), 'utf8')).toBe('plaintext');
    expect(statSync(join(dir, 'out')).mode & 0o777).toBe(0o600);
  });

  it('can be written by path through /proc/self/fd (as decryptFile does), then linked', async () => {
    const dir = freshDir('b');
    const key = randomBytes(32);
    const iv = randomBytes(16);
    const plain = patternBytes(3 * MiB + 7, 5);
    const c = createCipheriv('aes-256-cbc', key, iv);
    const sealed = join(dir, 'sealed');
    writeFileSync(sealed, Buffer.concat([iv, c.update(plain), c.final()]));
    const fd = await b.openAnonymous(dir);
    try {
      await b.decryptFile(sealed, `/proc/self/fd/${fd}`, key, iv, { threads: 2, srcOffset: 16 });
      expect(readdirSync(dir)).toEqual(['sealed']);
      await b.linkAnonymous(fd, join(dir, 'plain'));
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(join(dir, 'plain')).equals(plain)).toBe(true);
  });

  it('refuses to link over an existing name (ERR_IO EEXIST) and leaves it as it was', async () => {
    const dir = freshDir('c');
    writeFileSync(join(dir, 'taken'), 'keep');
    const fd = await b.openAnonymous(dir);
    try {
      await expect(b.linkAnonymous(fd, join(dir, 'taken'))).rejects.toMatchObject({
        code: 'ERR_IO',
        syscall: 'linkat',
        path: join(dir, 'taken'),
      });
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(join(dir, 'taken'), 'utf8')).toBe('keep');
  });

  it('reports a directory that cannot hold one as ERR_IO with the path', async () => {
    const file = tmp.file('not-a-dir');
    writeFileSync(file, '');
    await expect(b.openAnonymous(file)).rejects.toMatchObject({ code: 'ERR_IO', path: file });
    await expect(b.openAnonymous(tmp.file('missing'))).rejects.toMatchObject({
      code: 'ERR_IO',
      errno: 2,
    });
  });

  it('leaves nothing on disk when the writer is SIGKILLed before the link', async () => {
    const dir = freshDir('d');
    const index = JSON.stringify(fileURLToPath(new URL('../index.js', import.meta.url)));
    const code = `
      const { binding } = require(${index}).load();
      const fs = require('node:fs');
      binding.openAnonymous(${JSON.stringify(dir)}).then((fd) => {
        fs.writeSync(fd, Buffer.alloc(4 * 1024 * 1024, 0x41));
        console.log('written');
        setInterval(() => {}, 1000);
      });
    `;
    const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => String(d).includes('written') && resolve());
      child.on('exit', (c) => reject(new Error(`child exited (${c}) before writing`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    expect(readdirSync(dir)).toEqual([]);
  });
});
