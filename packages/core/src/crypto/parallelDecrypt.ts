import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { SluiceError } from '@sluice/protocol';
import { abortError } from '../platform/abort.js';
import { IO_BUFFER_BYTES } from './fileIo.js';

/** Below this ciphertext size the cost of starting workers outweighs the parallel speed-up. */
export const PARALLEL_DECRYPT_MIN_BYTES = 32 * 1024 * 1024;

export function defaultThreads(): number {
  return Math.min(2, availableParallelism());
}

// The worker body is evaluated from a string (eval: true) so the same code runs from src/ under
// vitest and from the compiled dist/ without resolving a separate worker file. The process shares
// file descriptors between threads, so workers read and write through the caller's fds.
const WORKER_SOURCE = `
'use strict';
const { workerData, parentPort } = require('node:worker_threads');
const { readSync, writeSync } = require('node:fs');
const { createDecipheriv } = require('node:crypto');
const { srcFd, dstFd, key, iv, srcOffset, start, end, bufSize, abortFlag } = workerData;
const flag = new Int32Array(abortFlag);
function readFully(buf, length, position) {
  let done = 0;
  while (done < length) {
    const n = readSync(srcFd, buf, done, length - done, position + done);
    if (n === 0) throw Object.assign(new Error('file ended at byte ' + (position + done)), { code: 'ERR_IO' });
    done += n;
  }
}
function writeFully(buf, position) {
  let done = 0;
  while (done < buf.length) done += writeSync(dstFd, buf, done, buf.length - done, position + done);
}
try {
  let prev = Buffer.from(iv);
  if (start > 0) {
    prev = Buffer.allocUnsafe(16);
    readFully(prev, 16, srcOffset + start - 16);
  }
  const decipher = createDecipheriv('aes-256-cbc', Buffer.from(key), prev);
  decipher.setAutoPadding(false);
  const buf = Buffer.allocUnsafe(Math.min(bufSize, end - start));
  const out = Buffer.allocUnsafe(buf.length);
  let pos = start;
  let aborted = false;
  while (pos < end) {
    if (Atomics.load(flag, 0) !== 0) { aborted = true; break; }
    const n = Math.min(buf.length, end - pos);
    readFully(buf, n, srcOffset + pos);
    // Cache-sized slices into a reused buffer: a fresh 8 MiB result per update() costs page faults.
    let w = 0;
    for (let at = 0; at < n; at += 262144) w += decipher.update(buf.subarray(at, Math.min(at + 262144, n))).copy(out, w);
    writeFully(out.subarray(0, w), pos);
    pos += n;
  }
  parentPort.postMessage({ aborted });
} catch (e) {
  parentPort.postMessage({ error: { message: String(e && e.message), code: e && e.code, syscall: e && e.syscall, errno: e && e.errno, path: e && e.path } });
}
`;

interface WorkerReply {
  aborted?: boolean;
  error?: { message: string; code?: string; syscall?: string; errno?: number; path?: string };
}

export interface ParallelDecryptJob {
  srcFd: number;
  dstFd: number;
  key: Buffer;
  iv: Buffer;
  srcOffset: number;
  /** Ciphertext length (a multiple of 16). */
  length: number;
  threads: number;
  signal: AbortSignal | undefined;
}

// Process-wide cap on decrypt workers, so a batch job decrypting hundreds of files at once holds
// at most this many threads and this many 8 MiB buffers; ranges beyond it wait for a slot.
const MAX_WORKERS = Math.max(2, availableParallelism());
let running = 0;
const waiting: (() => void)[] = [];

async function withWorkerSlot<T>(run: () => Promise<T>): Promise<T> {
  if (running >= MAX_WORKERS) await new Promise<void>((resolve) => waiting.push(resolve));
  else running++;
  try {
    return await run();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

function runWorker(data: Record<string, unknown>): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: data });
    let reply: WorkerReply | undefined;
    worker.once('message', (m: WorkerReply) => {
      reply = m;
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (reply) resolve(reply);
      else reject(new SluiceError('ERR_CRYPTO', `decrypt worker exited with code ${code}`));
    });
  });
}

/**
 * Raw CBC decryption of the ciphertext at [srcOffset, srcOffset + length) of srcFd into dstFd at
 * [0, length), split at 16-byte boundaries across `threads` workers. Each worker starts its
 * range with the preceding ciphertext block as IV. Padding is left for the caller to strip.
 */
export async function parallelDecrypt(job: ParallelDecryptJob): Promise<void> {
  const blocks = job.length / 16;
  const perWorker = Math.ceil(blocks / job.threads) * 16;
  const abortFlag = new SharedArrayBuffer(4);
  const onAbort = () => Atomics.store(new Int32Array(abortFlag), 0, 1);
  job.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const runs: Promise<WorkerReply>[] = [];
    for (let start = 0; start < job.length; start += perWorker) {
      const run = withWorkerSlot(() =>
        runWorker({
          srcFd: job.srcFd,
          dstFd: job.dstFd,
          key: job.key,
          iv: job.iv,
          srcOffset: job.srcOffset,
          start,
          end: Math.min(start + perWorker, job.length),
          bufSize: IO_BUFFER_BYTES,
          abortFlag,
        }),
      );
      // The first failure stops the other workers at their next piece.
      run.then((r) => r.error && onAbort(), onAbort);
      runs.push(run);
    }
    const replies = await Promise.allSettled(runs);
    for (const r of replies) {
      if (r.status === 'rejected') throw r.reason;
      if (r.value.error) throw Object.assign(new Error(r.value.error.message), r.value.error);
    }
    if (job.signal?.aborted) throw abortError(job.signal);
  } finally {
    job.signal?.removeEventListener('abort', onAbort);
  }
}
