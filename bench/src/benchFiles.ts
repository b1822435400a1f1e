// The files and child processes the pull benches share: a generated pseudo-model, SHA-256 and
// fsync of files, and client runs in fresh Node processes that print one JSON line.
import { type ChildProcess, spawn } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';

const MiB = 1024 * 1024;

export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Incompressible bytes fast: an AES-256-CTR keystream. Returns the file's SHA-256 (hex). */
export async function writePseudoModel(path: string, bytes: number): Promise<string> {
  const ctr = createCipheriv('aes-256-ctr', randomBytes(32), randomBytes(16));
  const zeros = Buffer.alloc(8 * MiB);
  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    for (let done = 0; done < bytes; ) {
      const n = Math.min(zeros.length, bytes - done);
      const block = ctr.update(zeros.subarray(0, n));
      hash.update(block);
      await fh.write(block, 0, block.length);
      done += n;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

export async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const d of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(d);
  return hash.digest('hex');
}

/**
 * Runs `node SCRIPT` (relative to this file) with `job` as JSON on stdin, so no secret shows in a
 * process listing; resolves with the JSON line it prints. The process is in `children` while it
 * runs, for the caller to kill on SIGINT.
 */
export function jsonChild<T>(
  script: string,
  job: object,
  children: Set<ChildProcess>,
  /** `taskset -c` list the child is pinned to (e.g. '0': one core, as on a small device). */
  cpus?: string,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const argv = [process.execPath, new URL(script, import.meta.url).pathname];
    const [cmd = '', ...rest] = cpus === undefined ? argv : ['taskset', '-c', cpus, ...argv];
    const proc = spawn(cmd, rest, { stdio: ['pipe', 'pipe', 'inherit'] });
    children.add(proc);
    let out = '';
    proc.stdout?.on('data', (d) => {
      out += d;
    });
    proc.on('error', reject);
    proc.on('close', (code) => {
      children.delete(proc);
      if (code !== 0) reject(new Error(`${script} exited with ${code}`));
      else resolve(JSON.parse(out) as T);
    });
    proc.stdin?.end(JSON.stringify(job));
  });
}
