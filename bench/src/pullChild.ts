// One push or one pull as a client in a fresh process: `node pullChild.js` with a JSON job on
// stdin (so the password is in no process listing). Logs in first, then times only the
// operation itself, and prints one JSON line: seconds, and the process's peak RSS (VmHWM, which
// unlike getrusage's maxrss is not inherited from the parent across fork and exec).
import { readFileSync } from 'node:fs';
import { pull, push, Session } from '@sluice/core';

export type PullChildJob =
  // hardware: only for a server with an S3 CDN, to fetch the uploader keys.
  | (Login & { op: 'push'; src: string; tempDir: string; hardware?: string })
  | (Login & { op: 'pull'; to: string; hardware: string });

interface Login {
  apiUrl: string;
  email: string;
  password: string;
  name: string;
  folder: string;
}

export interface PullChildResult {
  seconds: number;
  peakRssMb: number;
  /** Pulled plaintext bytes, or the pushed resource's version. */
  size?: number;
  version?: number;
  /**
   * Seconds from the start to the first progress event: of a pull, envelope + KDF + small part;
   * of a push to an S3 CDN, uploader keys + sealing (the first uploaded part).
   */
  firstProgressSeconds?: number;
  /**
   * Seconds from the start to the last progress event: after it a pull truncates, fsyncs and
   * renames, a push to an S3 CDN registers the version with the API.
   */
  lastProgressSeconds?: number;
  /** CPU seconds (user + system, all threads) of this process during the operation. */
  cpuSeconds: number;
}

async function readStdin(): Promise<string> {
  let text = '';
  for await (const d of process.stdin) text += d;
  return text;
}

const job = JSON.parse(await readStdin()) as PullChildJob;
const session = new Session({ apiUrl: job.apiUrl });
session.setCredentials(job.email, job.password);
await session.login();

const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const since = () => Number(process.hrtime.bigint() - t0) / 1e9;
let firstProgressSeconds: number | undefined;
let lastProgressSeconds: number | undefined;
const onProgress = () => {
  lastProgressSeconds = since();
  firstProgressSeconds ??= lastProgressSeconds;
};
let result: Omit<PullChildResult, 'peakRssMb' | 'cpuSeconds'>;
if (job.op === 'push') {
  const r = await push(session, job.folder, job.name, job.src, {
    tempDir: job.tempDir,
    ...(job.hardware === undefined ? {} : { password: job.password, hardware: job.hardware }),
    onProgress,
  });
  result = { seconds: since(), version: r.version };
} else {
  const r = await pull(session, job.folder, job.name, {
    to: job.to,
    password: job.password,
    hardware: job.hardware,
    onProgress,
  });
  result = { seconds: since(), size: r.size };
}
if (firstProgressSeconds !== undefined) result.firstProgressSeconds = firstProgressSeconds;
if (lastProgressSeconds !== undefined) result.lastProgressSeconds = lastProgressSeconds;
const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
if (!hwm) throw new Error('VmHWM not found in /proc/self/status');
const cpu = process.cpuUsage(cpu0);
const out: PullChildResult = {
  ...result,
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
  peakRssMb: Number(hwm[1]) / 1024,
};
process.stdout.write(`${JSON.stringify(out)}\n`);
