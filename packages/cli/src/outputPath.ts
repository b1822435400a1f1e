import { createWriteStream, statSync } from 'node:fs';
import { mkdir, mkdtemp, open, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { SluiceError } from '@sluice/core';
import { isDirectory } from './isDirectory.js';

/** `-` as a file argument: stdin where a file is read, stdout where one is written. */
export const STDIO = '-';

/**
 * Where an output named `given` goes, for a resource called `name`: undefined for `-` (stdout);
 * `DIR/NAME` for an existing directory or a path ending in `/` (created if missing, as `rclone`
 * and `curl --create-dirs` do); else the path itself, whose directory must exist.
 */
export async function outputPath(given: string, name: string): Promise<string | undefined> {
  if (given === STDIO) return undefined;
  const full = resolve(given);
  if (given.endsWith('/')) {
    await mkdir(full, { recursive: true }).catch((e: unknown) => {
      throw new SluiceError('ERR_IO', `cannot create the directory ${full}: ${errnoText(e)}`, {
        cause: e,
        path: full,
      });
    });
    return join(full, name);
  }
  if (isDirectory(full)) return join(full, name);
  checkParent(full);
  return full;
}

/** ERR_IO naming `path`'s directory when it is missing or not a directory, before any work. */
export function checkParent(path: string): void {
  const parent = dirname(path);
  let kind: string | undefined;
  try {
    if (!statSync(parent).isDirectory()) kind = 'is not a directory';
  } catch (e) {
    kind = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : errnoText(e);
  }
  if (kind !== undefined) {
    throw new SluiceError('ERR_IO', `cannot write ${path}: directory ${parent} ${kind}`, {
      path,
    });
  }
}

/**
 * Runs `job` with a path in a fresh private directory (0700, under the temp dir), removed
 * afterwards whatever happens: where stdin is spooled, or an output waits until verified.
 */
export async function withTempFile<T>(name: string, job: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-'));
  try {
    return await job(join(dir, name));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Copies all of stdin into `path` (created 0600). */
export async function stdinToFile(path: string): Promise<void> {
  await pipeline(process.stdin, createWriteStream(path, { mode: 0o600 }));
}

/**
 * Copies the file at `path` to stdout, which stays open; a closed stdout (EPIPE) is ERR_IO. The
 * file is unlinked as soon as it is open, so a plaintext output waiting for stdout has no name a
 * crash (SIGKILL) could leave behind.
 */
export async function fileToStdout(path: string): Promise<void> {
  const out = process.stdout;
  const handle = await open(path, 'r');
  await unlink(path);
  await new Promise<void>((done, fail) => {
    const input = handle.createReadStream();
    const onError = (e: unknown) => {
      input.destroy();
      fail(new SluiceError('ERR_IO', `cannot write to stdout: ${errnoText(e)}`, { cause: e }));
    };
    out.once('error', onError);
    input.once('error', onError);
    input.once('end', () => {
      out.off('error', onError);
      done();
    });
    input.pipe(out, { end: false });
  });
}

function errnoText(e: unknown): string {
  const { code, message } = e as { code?: unknown; message?: unknown };
  return typeof code === 'string' ? code : String(message ?? e);
}
