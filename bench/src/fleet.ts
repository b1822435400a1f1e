// pnpm bench:fleet [--json] [--quick] [--samples 100] [--refresh-rounds 5] [--duration 10]
//                  [--connections 8] [--batch 1000] [--dir DIR] [--no-write]
// pnpm bench:fleet --render FILE   (the section again from an earlier --json output)
// The API with a fleet of accounts behind it: 1 000, 10 000 and 100 000 device accounts (--quick:
// 1 000 and 10 000) seeded straight into the store (store.users.insert in batched transactions,
// each with one login; one precomputed scrypt hash of one known password for all), then measured
// through the API on loopback at each size: on the embedded default, on PostgreSQL (S3 storage),
// and on two PostgreSQL instances over the same database taken in turn. Mutation latencies (a
// first device bind, a refresh, a user creation by an Admin; one request at a time, with the
// store's share of each), paging through GET /users, logins/s and envelopes/s of bound devices.
// The servers keep the default scrypt cost and the envelope cache on, as bench:api's main run.
// Writes the `fleet` section of docs/BENCHMARKS.md.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { backend, push, Session } from '@sluice/core';
import { hashPassword, type Role } from '@sluice/server';
import { ADMIN_EMAIL, FOLDER, NAME, UPLOADER_EMAIL } from './fleetAccounts.js';
import type { ServerChild } from './fleetChild.js';
import { renderMarkdown } from './fleetMarkdown.js';
import {
  type MeasureOptions,
  measureSize,
  type SizeRun,
  type Target,
  type TargetId,
} from './fleetMeasure.js';
import {
  buildResult,
  type Database,
  type FleetResult,
  type SeedRun,
  targetLines,
} from './fleetReport.js';
import { startStack } from './fleetStack.js';
import { machineInfo, writeBenchmarkSection } from './report.js';
import { parseArgs } from './util.js';

const args = parseArgs(process.argv.slice(2));
const json = Boolean(args.json);
const quick = Boolean(args.quick);
const SIZES = quick ? [1000, 10_000] : [1000, 10_000, 100_000];
const log = (msg: string) => process.stderr.write(`${msg}\n`);

function intArg(name: string, fallback: number, min: number): number {
  const v = Number(args[name] ?? fallback);
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer ≥ ${min}`);
  return v;
}

const options = {
  samples: intArg('samples', quick ? 40 : 100, 8),
  refreshRounds: intArg('refresh-rounds', 5, 1),
  connections: intArg('connections', 8, 2),
  duration: intArg('duration', quick ? 3 : 10, 1),
  envelopeDevices: 8,
};
const batch = intArg('batch', 1000, 1);
/** The small part of bench:api's resource: 64 KiB (30% of the blob must reach it, FORMAT.md §2). */
const PLAIN_BYTES = 220_000;

const dir = mkdtempSync(join(String(args.dir ?? tmpdir()), 'sluice-bench-fleet-'));
const children = new Set<ChildProcess>();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`bench:fleet: ${sig}, stopping the servers`);
    for (const c of children) c.kill('SIGKILL');
    // PostgreSQL and a Ceph of our own are stopped by the main path's finally once it unwinds.
    process.exitCode = 130;
  });
}

/** Adds device accounts `from` … `to - 1` (and `extra` the first time) to a database. */
async function seed(
  child: ServerChild,
  from: number,
  to: number,
  passwordHash: string,
  extra: Array<{ email: string; role: Role }>,
): Promise<SeedRun> {
  const m = await child.ask({ type: 'seed', from, to, passwordHash, batch, extra });
  if (m.type !== 'seeded') throw new Error(`fleetServer said ${m.type}`);
  const analyzed = await child.ask({ type: 'analyze' });
  if (analyzed.type !== 'analyzed') throw new Error(`fleetServer said ${analyzed.type}`);
  return { accounts: to, seconds: Math.round(m.seconds * 100) / 100 };
}

/** The one resource the devices ask for, pushed by the uploader with the core client. */
async function uploadResource(url: string, password: string): Promise<void> {
  const session = new Session({ apiUrl: url });
  session.setCredentials(UPLOADER_EMAIL, password);
  await session.login();
  await push(session, FOLDER, NAME, randomBytes(PLAIN_BYTES), { smallSizeKB: 64 });
}

/** `count` random account numbers below `size` not picked before (marked in `used`). */
function pick(used: Set<number>, size: number, count: number): number[] {
  if (size - used.size < count) throw new Error(`only ${size - used.size} unused accounts left`);
  const out: number[] = [];
  while (out.length < count) {
    const i = Math.floor(Math.random() * size);
    if (used.has(i)) continue;
    used.add(i);
    out.push(i);
  }
  return out;
}

function summary(id: TargetId, r: SizeRun): string {
  const p = (l: { p50: number; p99: number; storeP99: number }) =>
    `${l.p50.toFixed(1)}/${l.p99.toFixed(1)} (store ${l.storeP99.toFixed(2)})`;
  return `  ${id.padEnd(12)} ${String(r.accounts).padStart(6)}: bind ${p(r.bind)}, refresh ${p(r.refresh)}, create ${p(r.create)} ms; ${r.logins.perSecond} logins/s; ${r.paging.pages} pages in ${r.paging.seconds} s; ${r.envelopes.perSecond} envelopes/s`;
}

async function main(): Promise<void> {
  log(
    `sluice bench:fleet — ${SIZES.join(', ')} accounts, ${options.samples} samples, in ${dir} (crypto backend: ${backend().kind})`,
  );
  const loadBefore = loadavg();
  const t0 = Date.now();
  const password = randomBytes(18).toString('base64url');
  const passwordHash = await hashPassword(password);
  const stack = await startStack(dir, children, log);
  try {
    const [pgFirst, pgSecond] = stack.postgres;
    const dbOf: Record<Database, ServerChild> = { embedded: stack.embedded, postgres: pgFirst };
    const targets: Array<Target & { db: Database }> = [
      { id: 'embedded', db: 'embedded', instances: [stack.embedded] },
      { id: 'postgres', db: 'postgres', instances: [pgFirst], databaseCpuMs: stack.postgresCpuMs },
      {
        id: 'twoInstances',
        db: 'postgres',
        instances: [pgFirst, pgSecond],
        databaseCpuMs: stack.postgresCpuMs,
      },
    ];
    const extra = [
      { email: ADMIN_EMAIL, role: 'Admin' as const },
      { email: UPLOADER_EMAIL, role: 'ResourceUploader' as const },
    ];
    const seeding: Record<Database, SeedRun[]> = { embedded: [], postgres: [] };
    const used: Record<Database, Set<number>> = { embedded: new Set(), postgres: new Set() };
    const runs: Record<TargetId, SizeRun[]> = { embedded: [], postgres: [], twoInstances: [] };
    const measure: MeasureOptions = { password, ...options };
    for (const [k, size] of SIZES.entries()) {
      for (const db of ['embedded', 'postgres'] as const) {
        const from = SIZES[k - 1] ?? 0;
        const s = await seed(dbOf[db], from, size, passwordHash, k === 0 ? extra : []);
        log(`seeded ${db} to ${size} accounts in ${s.seconds} s`);
        seeding[db].push(s);
        if (k === 0) await uploadResource(dbOf[db].url, password);
      }
      for (const t of targets) {
        const picked = pick(used[t.db], size, options.samples);
        const r = await measureSize(t, size, picked, `${t.id}-${size}`, measure);
        runs[t.id].push(r);
        log(summary(t.id, r));
      }
    }
    const result = buildResult({
      quick,
      sizes: SIZES,
      options,
      seeding,
      runs,
      s3: stack.s3,
      seconds: (Date.now() - t0) / 1000,
      load: { before: loadBefore, after: loadavg() },
      machine: machineInfo(),
    });
    if (!args['no-write']) writeBenchmarkSection('fleet', renderMarkdown(result));
    for (const line of targetLines(result)) log(line);
    if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await stack.close();
  }
}

/**
 * `--render FILE`: the section of an earlier run's JSON line, written again; its figures and
 * targets are worked out again from the runs it holds, as this version of the bench states them.
 */
function render(file: string): void {
  const saved = JSON.parse(readFileSync(file, 'utf8')) as FleetResult;
  if (saved.bench !== 'fleet') throw new Error(`${file} is not the output of bench:fleet --json`);
  const { samples, refreshRounds, connections, duration, envelopeDevices } = saved;
  const result = {
    ...buildResult({
      quick: saved.quick,
      sizes: saved.sizes,
      options: { samples, refreshRounds, connections, duration, envelopeDevices },
      seeding: saved.seeding,
      runs: saved.runs,
      s3: saved.s3,
      seconds: saved.seconds,
      load: saved.load,
      machine: saved.machine,
    }),
    date: saved.date,
  };
  writeBenchmarkSection('fleet', renderMarkdown(result));
  for (const line of targetLines(result)) log(line);
  log(`bench:fleet: the section of ${file} written to docs/BENCHMARKS.md`);
}

try {
  if (typeof args.render === 'string') render(args.render);
  else await main();
} finally {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
