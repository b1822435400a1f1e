// One instance of the resource API for bench:fleet, in its own process (forked with IPC, so the
// load generator does not share its event loop): the real server with the default scrypt cost,
// over the embedded default or PostgreSQL with S3 storage. On request it seeds accounts straight
// into its store (store.users.insert in batched transactions, one precomputed password hash for
// all), and it answers every request with `x-fleet-store-ms`: the wall time the request spent in
// the store (queries and transactions, overlaps counted once; exact when requests come one at a
// time, which is how the bench measures latencies), and `x-fleet-store-calls`: how many.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import {
  createServer,
  type RefreshFamily,
  type Role,
  type ServerOptions,
  type SqlDatabase,
  type UserRecord,
} from '@sluice/server';
import { deviceEmail } from './fleetAccounts.js';

export interface FleetServerJob {
  options: ServerOptions;
}

/** Seeds device accounts `from` … `to - 1`, each with one login (refresh family). */
export interface SeedRequest {
  type: 'seed';
  from: number;
  to: number;
  /** The one precomputed scrypt hash every seeded account gets (the known password's). */
  passwordHash: string;
  /** Accounts per transaction. */
  batch: number;
  /** Further accounts (admin, uploader) with the same password. */
  extra: Array<{ email: string; role: Role }>;
}

export type FleetServerRequest =
  | SeedRequest
  | { type: 'analyze' }
  | { type: 'cpu' }
  | { type: 'close' };

export type FleetServerMessage =
  | { type: 'listening'; url: string; backend: string }
  | { type: 'seeded'; accounts: number; seconds: number }
  | { type: 'analyzed'; seconds: number }
  | { type: 'cpu'; cpuMs: number }
  | { type: 'error'; message: string };

/** Seeded accounts are spaced 1 ms apart in creation order, starting a day before the run. */
const CREATED_BASE_MS = Date.now() - 24 * 3600 * 1000;
const REFRESH_TTL_MS = 30 * 24 * 3600 * 1000;

function send(message: FleetServerMessage): void {
  process.send?.(message);
}

/**
 * Wraps the database's `query` and `transaction` to add up the time something is running in the
 * store; returns the running totals (ms, and calls: a transaction is one).
 */
function timeStore(db: SqlDatabase): () => { ms: number; calls: number } {
  let active = 0;
  let since = 0;
  let busy = 0;
  let calls = 0;
  const wrap =
    <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      calls++;
      if (active++ === 0) since = performance.now();
      try {
        return await fn(...a);
      } finally {
        if (--active === 0) busy += performance.now() - since;
      }
    };
  db.query = wrap(db.query.bind(db)) as SqlDatabase['query'];
  db.transaction = wrap(db.transaction.bind(db)) as SqlDatabase['transaction'];
  return () => ({ ms: busy + (active > 0 ? performance.now() - since : 0), calls });
}

function account(email: string, role: Role, passwordHash: string, createdMs: number): UserRecord {
  const at = new Date(createdMs).toISOString();
  return {
    id: randomUUID(),
    email,
    role,
    disabled: false,
    passwordHash,
    boundHardwareHash: null,
    orgId: 'default',
    createdAt: at,
    updatedAt: at,
  };
}

/** A login of `user` whose refresh token nobody holds (the families table grows with the fleet). */
function family(user: UserRecord): RefreshFamily {
  return {
    id: randomBytes(16).toString('base64url'),
    userId: user.id,
    currentHash: randomBytes(32).toString('hex'),
    previousHashes: [],
    createdAt: user.createdAt,
    rotatedAt: user.createdAt,
    expiresAt: new Date(Date.now() + REFRESH_TTL_MS).toISOString(),
    revokedAt: null,
    revokedReason: null,
  };
}

type Server = Awaited<ReturnType<typeof createServer>>;

async function seed(server: Server, m: SeedRequest): Promise<void> {
  const t0 = performance.now();
  const extra = m.extra.map((e) => account(e.email, e.role, m.passwordHash, CREATED_BASE_MS - 1));
  for (let start = m.from; start < m.to || extra.length > 0; start += m.batch) {
    const end = Math.min(m.to, start + m.batch);
    await server.store.transaction(async (t) => {
      for (const u of extra.splice(0)) await t.users.insert(u);
      for (let i = start; i < end; i++) {
        const u = account(deviceEmail(i), 'Operator', m.passwordHash, CREATED_BASE_MS + i);
        await t.users.insert(u);
        await t.families.insert(family(u));
      }
    });
  }
  const seconds = (performance.now() - t0) / 1000;
  send({ type: 'seeded', accounts: m.to - m.from, seconds });
}

/** PostgreSQL: what autovacuum would do within a minute of a bulk load, done now, untimed. */
async function analyze(server: Server): Promise<void> {
  const t0 = performance.now();
  if (server.store.backend === 'postgres') await server.store.db.query('VACUUM ANALYZE');
  send({ type: 'analyzed', seconds: (performance.now() - t0) / 1000 });
}

async function main(job: FleetServerJob): Promise<void> {
  await mkdir(job.options.dataDir, { recursive: true, mode: 0o700 });
  const server = await createServer(job.options);
  const storeMs = timeStore(server.store.db);
  const started = new WeakMap<object, { ms: number; calls: number }>();
  server.app.addHook('onRequest', async (request) => {
    started.set(request, storeMs());
  });
  server.app.addHook('onSend', async (request, reply, payload) => {
    const s0 = started.get(request);
    if (s0 === undefined) return payload;
    const s1 = storeMs();
    reply.header('x-fleet-store-ms', (s1.ms - s0.ms).toFixed(3));
    reply.header('x-fleet-store-calls', String(s1.calls - s0.calls));
    return payload;
  });
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  process.on('message', (m: FleetServerRequest) => {
    const fail = (e: unknown) =>
      send({ type: 'error', message: e instanceof Error ? e.message : String(e) });
    if (m.type === 'seed') seed(server, m).catch(fail);
    else if (m.type === 'analyze') analyze(server).catch(fail);
    else if (m.type === 'cpu') {
      const cpu = process.cpuUsage();
      send({ type: 'cpu', cpuMs: (cpu.user + cpu.system) / 1000 });
    } else if (m.type === 'close') void server.close().then(() => process.exit(0));
  });
  send({ type: 'listening', url, backend: server.store.backend });
}

process.once('message', (job: FleetServerJob) => {
  main(job).catch((e: unknown) => {
    send({ type: 'error', message: e instanceof Error ? e.message : String(e) });
    process.exit(1);
  });
});
