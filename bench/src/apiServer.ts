// The server side of bench:api, in its own process (forked with IPC) so the load generator does
// not share its event loop: the real resource API over a fresh data directory, with the default
// scrypt cost and SLUICE_SERVER_TIMING=1 (set by the parent), summing the `Server-Timing` steps
// of every envelope request and the time each spent in the server.
import { mkdir } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { createServer, initAdmin } from '@sluice/server';
import { type ProfileSummary, startProfile } from './apiProfile.js';

export interface ApiServerJob {
  dataDir: string;
  adminEmail: string;
  adminPassword: string;
}

/** What the parent asks for over IPC. */
export type ApiServerRequest =
  | { type: 'stats' }
  | { type: 'reset'; profile?: boolean }
  | { type: 'close' };

export interface ApiServerStats {
  /** Envelope requests answered since the last reset (any status). */
  count: number;
  ok: number;
  hits: number;
  misses: number;
  /** Sum over those requests of each Server-Timing step, ms. */
  stepsMs: Record<string, number>;
  /** Sum of the time from `onRequest` to `onResponse`, ms. */
  serverMs: number;
  /** CPU of this process since the last reset, ms. */
  cpuUserMs: number;
  cpuSystemMs: number;
  /** Wall time since the last reset, ms. */
  wallMs: number;
  rssMb: number;
  /** With `reset {profile: true}`: the CPU profile of the main thread since then. */
  profile?: ProfileSummary;
}

export type ApiServerMessage =
  | { type: 'listening'; url: string }
  | { type: 'stats'; stats: ApiServerStats }
  | { type: 'reset' }
  | { type: 'error'; message: string };

const ROUTE = '/resources/get/:folder';

function send(message: ApiServerMessage): void {
  process.send?.(message);
}

async function main(job: ApiServerJob): Promise<void> {
  await mkdir(job.dataDir, { recursive: true, mode: 0o700 });
  await initAdmin(job.dataDir, job.adminEmail, job.adminPassword);
  const server = await createServer({ dataDir: job.dataDir });
  const started = new WeakMap<object, number>();
  let stats: ApiServerStats;
  let cpu0 = process.cpuUsage();
  let wall0 = performance.now();
  const reset = () => {
    stats = {
      count: 0,
      ok: 0,
      hits: 0,
      misses: 0,
      stepsMs: {},
      serverMs: 0,
      cpuUserMs: 0,
      cpuSystemMs: 0,
      wallMs: 0,
      rssMb: 0,
    };
    cpu0 = process.cpuUsage();
    wall0 = performance.now();
  };
  reset();
  server.app.addHook('onRequest', async (request) => {
    started.set(request, performance.now());
  });
  server.app.addHook('onResponse', async (request, reply) => {
    if (request.routeOptions.url !== ROUTE) return;
    const t0 = started.get(request);
    stats.count++;
    if (reply.statusCode === 200) stats.ok++;
    if (t0 !== undefined) stats.serverMs += performance.now() - t0;
    const timing = reply.getHeader('server-timing');
    if (typeof timing !== 'string') return;
    for (const part of timing.split(',')) {
      const [name, param] = part.trim().split(';') as [string, string | undefined];
      if (param?.startsWith('dur=')) {
        stats.stepsMs[name] = (stats.stepsMs[name] ?? 0) + Number(param.slice(4));
      } else if (param === 'desc=hit') stats.hits++;
      else if (param === 'desc=miss') stats.misses++;
    }
  });
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  let profiler: ReturnType<typeof startProfile> | undefined;
  process.on('message', async (m: ApiServerRequest) => {
    if (m.type === 'reset') {
      profiler = m.profile ? startProfile() : undefined;
      reset();
      send({ type: 'reset' });
    } else if (m.type === 'stats') {
      const cpu = process.cpuUsage(cpu0);
      stats.cpuUserMs = cpu.user / 1000;
      stats.cpuSystemMs = cpu.system / 1000;
      stats.wallMs = performance.now() - wall0;
      stats.rssMb = process.memoryUsage().rss / 1e6;
      if (profiler !== undefined) {
        stats.profile = await profiler.stop();
        profiler = undefined;
      }
      send({ type: 'stats', stats });
    } else if (m.type === 'close') {
      void server.close().then(() => process.exit(0));
    }
  });
  send({ type: 'listening', url });
}

process.once('message', (job: ApiServerJob) => {
  main(job).catch((e: unknown) => {
    send({ type: 'error', message: e instanceof Error ? e.message : String(e) });
    process.exit(1);
  });
});
