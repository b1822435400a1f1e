// One batch of loads as a client in a fresh process: `node batchChild.js` with a JSON job on stdin
// (so the password is in no process listing). Logs in first, then times only the loads: either a
// plain loop of pull, one resource after the other (what a script without
// pullMany does), or one pullMany. Prints one JSON line: seconds, CPU seconds, peak RSS and what
// each resource did.
import { readFileSync, writeFileSync } from 'node:fs';
import { Session as Inspector } from 'node:inspector/promises';
import { join } from 'node:path';
import { PULL_MANY_DEFAULTS, pull, pullMany, Session } from '@sluice/core';

export interface BatchChildJob {
  mode: 'sequential' | 'pullMany';
  apiUrl: string;
  email: string;
  password: string;
  hardware: string;
  folder: string;
  names: string[];
  /** Each resource goes to `outDir/NAME`. */
  outDir: string;
  cacheDir?: string;
  /** pullMany's limits (its defaults when absent). */
  concurrency?: number;
  apiConcurrency?: number;
  cdnConcurrency?: number;
  /** Write a V8 CPU profile of the timed part to this file (.cpuprofile). */
  profileFile?: string;
}

export interface BatchChildResult {
  seconds: number;
  cpuSeconds: number;
  peakRssMb: number;
  /** Plaintext bytes loaded. */
  bytes: number;
  ok: number;
  fromCache: number;
  /** `folder/name: message (code)` of each failure. */
  failures: string[];
  /** Seconds from the start to the first progress event (envelope, key, small part). */
  firstProgressSeconds?: number;
  limits?: { concurrency: number; apiConcurrency: number; cdnConcurrency: number };
}

async function readStdin(): Promise<string> {
  let text = '';
  for await (const d of process.stdin) text += d;
  return text;
}

const job = JSON.parse(await readStdin()) as BatchChildJob;
const session = new Session({ apiUrl: job.apiUrl });
session.setCredentials(job.email, job.password);
await session.login();

const inspector = job.profileFile === undefined ? undefined : new Inspector();
if (inspector) {
  inspector.connect();
  await inspector.post('Profiler.enable');
  await inspector.post('Profiler.start');
}
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const since = () => Number(process.hrtime.bigint() - t0) / 1e9;
let firstProgressSeconds: number | undefined;
const onFirst = () => {
  firstProgressSeconds ??= since();
};
const auth = { password: job.password, hardware: job.hardware };
const cache = job.cacheDir === undefined ? {} : { cacheDir: job.cacheDir };
let bytes = 0;
let ok = 0;
let fromCache = 0;
const failures: string[] = [];
let limits: BatchChildResult['limits'];

if (job.mode === 'sequential') {
  for (const name of job.names) {
    try {
      const r = await pull(session, job.folder, name, {
        to: join(job.outDir, name),
        ...auth,
        ...cache,
        onProgress: onFirst,
      });
      bytes += r.size;
      ok++;
      if (r.fromCache) fromCache++;
    } catch (e) {
      const err = e as { message?: string; code?: string };
      failures.push(`${job.folder}/${name}: ${err.message} (${err.code})`);
    }
  }
} else {
  limits = {
    concurrency: job.concurrency ?? PULL_MANY_DEFAULTS.concurrency,
    apiConcurrency: job.apiConcurrency ?? PULL_MANY_DEFAULTS.apiConcurrency,
    cdnConcurrency: job.cdnConcurrency ?? PULL_MANY_DEFAULTS.cdnConcurrency,
  };
  const results = await pullMany(
    session,
    job.names.map((name) => ({ folder: job.folder, name, to: join(job.outDir, name) })),
    { ...auth, ...cache, ...limits, onProgress: onFirst },
  );
  for (const r of results) {
    if (r.ok) {
      bytes += r.size;
      ok++;
      if (r.fromCache) fromCache++;
    } else failures.push(`${r.folder}/${r.name}: ${r.error.message} (${r.error.code})`);
  }
}

const seconds = since();
const cpu = process.cpuUsage(cpu0);
if (inspector && job.profileFile !== undefined) {
  const { profile } = await inspector.post('Profiler.stop');
  writeFileSync(job.profileFile, JSON.stringify(profile));
  inspector.disconnect();
}
const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
if (!hwm) throw new Error('VmHWM not found in /proc/self/status');
const out: BatchChildResult = {
  seconds,
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
  peakRssMb: Number(hwm[1]) / 1024,
  bytes,
  ok,
  fromCache,
  failures,
  ...(firstProgressSeconds === undefined ? {} : { firstProgressSeconds }),
  ...(limits ? { limits } : {}),
};
process.stdout.write(`${JSON.stringify(out)}\n`);
