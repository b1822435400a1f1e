// pnpm bench:api [--json] [--duration 10] [--connections 8] [--uncached N] [--profile] [--dir DIR]
//                [--no-write]
// Device envelopes per second (`POST /resources/get/{folder}`) under a bounded loopback load:
// autocannon with N connections in this process, the real resource API in a child process
// (apiServer.ts) with the default scrypt cost, one device user (already bound) asking for the
// envelope of a resource whose small part is 64 KiB. Run twice: with the server's envelope cache
// off (`SLUICE_ENVELOPE_CACHE=off`: every request pays both scrypt runs; a fixed number of
// requests, 3 per connection by default, as each can take seconds) and on for --duration seconds
// (the steady state of a device that asks again). The server times each step of every request (`Server-Timing`),
// so the report says where the time goes; --profile adds a third, CPU-profiled run with the cache
// (apiProfile.ts) that names the rest. Writes the `api` section of docs/BENCHMARKS.md.
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  backend,
  deriveEnvelopeKey,
  ENVELOPE_KDF,
  envelopeAad,
  openEnvelope,
  sealAndSplit,
} from '@sluice/core';
import autocannon from 'autocannon';
import type {
  ApiServerJob,
  ApiServerMessage,
  ApiServerRequest,
  ApiServerStats,
} from './apiServer.js';
import { machineInfo, writeBenchmarkSection } from './report.js';
import { parseArgs } from './util.js';

const args = parseArgs(process.argv.slice(2));
const json = Boolean(args.json);
const duration = Number(args.duration ?? 10);
const connections = Number(args.connections ?? 8);
if (!Number.isFinite(duration) || duration < 1) throw new Error('--duration must be ≥ 1 (seconds)');
if (!Number.isInteger(connections) || connections < 1 || connections > 256) {
  throw new Error('--connections must be an integer from 1 to 256');
}
const uncachedRequests = Number(args.uncached ?? connections * 3);
if (!Number.isInteger(uncachedRequests) || uncachedRequests < 1) {
  throw new Error('--uncached must be a positive integer (requests without the cache)');
}
const log = (msg: string) => process.stderr.write(`${msg}\n`);

export const ENVELOPES_PER_SECOND_TARGET = 300;
const KiB = 1024;
const SMALL_BYTES = 64 * KiB;
/** 30% of the blob must reach 64 KiB for the small part to be 64 KiB (docs/FORMAT.md §2). */
const PLAIN_BYTES = 220_000;
const FOLDER = 'models';
const NAME = 'small.bin';
const ADMIN = 'admin@bench.invalid';
const UPLOADER = 'uploader@bench.invalid';
const DEVICE = 'device@bench.invalid';
const HARDWARE = 'bench-api-device-0001';
/** The steps the envelope route times (packages/server/src/resources/service.ts, StepTimer). */
const STEPS = ['auth', 'kdf', 'read', 'seal', 'json'] as const;
const STEP_LABEL: Record<(typeof STEPS)[number] | 'other', string> = {
  auth: 'password check (scrypt, or the cache lookup)',
  kdf: 'envelope key (scrypt, or from the cache)',
  read: 'small part (file read, or from the cache)',
  seal: 'seal: payload JSON + base64, AES-256-GCM, base64',
  json: 'response JSON',
  other: 'the rest: HTTP, JWT check, schema, sending, waiting among the connections',
};

const dir = mkdtempSync(join(String(args.dir ?? tmpdir()), 'sluice-bench-api-'));
const children = new Set<ChildProcess>();
function removeAll(): void {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`bench:api: ${sig}, removing ${dir}`);
    removeAll();
    process.exit(130);
  });
}

interface ServerChild {
  url: string;
  ask(request: ApiServerRequest): Promise<ApiServerMessage>;
  close(): Promise<void>;
}

/** Forks apiServer.js over a fresh data directory; resolves once it listens. */
function startServerChild(
  name: string,
  adminPassword: string,
  cache: boolean,
): Promise<ServerChild> {
  const env: NodeJS.ProcessEnv = { ...process.env, SLUICE_SERVER_TIMING: '1' };
  if (cache) delete env.SLUICE_ENVELOPE_CACHE;
  else env.SLUICE_ENVELOPE_CACHE = 'off';
  const proc = fork(new URL('./apiServer.js', import.meta.url).pathname, [], {
    env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(proc);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const next = () =>
    new Promise<ApiServerMessage>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`apiServer exited with ${code}`));
      proc.once('exit', onExit);
      proc.once('message', (m: ApiServerMessage) => {
        proc.off('exit', onExit);
        if (m.type === 'error') reject(new Error(`apiServer: ${m.message}`));
        else resolve(m);
      });
    });
  const job: ApiServerJob = { dataDir: join(dir, name), adminEmail: ADMIN, adminPassword };
  const listening = next();
  proc.send(job);
  return listening.then((m) => {
    if (m.type !== 'listening') throw new Error(`apiServer said ${m.type}`);
    return {
      url: m.url,
      ask: (request) => {
        const answer = next();
        proc.send(request);
        return answer;
      },
      close: async () => {
        proc.send({ type: 'close' } satisfies ApiServerRequest);
        await exited;
        children.delete(proc);
      },
    };
  });
}

async function call(
  url: string,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<Response> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  return fetch(`${url}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function loginAs(url: string, email: string, password: string): Promise<string> {
  const res = await call(url, 'POST', '/login', undefined, { email, password });
  if (res.status !== 200) throw new Error(`login of ${email} answered ${res.status}`);
  return ((await res.json()) as { accessToken: string }).accessToken;
}

interface Sealed {
  manifest: unknown;
  dataKey: Buffer;
  small: Buffer;
  big: Buffer;
}

/** Users, the 64 KiB-small-part resource and the device's token, set up over the API. */
async function prepare(url: string, password: string, sealed: Sealed): Promise<string> {
  const admin = await loginAs(url, ADMIN, password);
  for (const [email, role] of [
    [UPLOADER, 'ResourceUploader'],
    [DEVICE, 'Operator'],
  ] as const) {
    const res = await call(url, 'POST', '/users', admin, { email, password, role });
    if (res.status !== 201) throw new Error(`creating ${email} answered ${res.status}`);
  }
  const form = new FormData();
  form.append('name', NAME);
  form.append('manifest', JSON.stringify(sealed.manifest));
  form.append('dataKey', sealed.dataKey.toString('base64'));
  form.append('small', new Blob([sealed.small]), 'small');
  form.append('big', new Blob([sealed.big]), 'big');
  const up = await fetch(`${url}/resources/${FOLDER}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await loginAs(url, UPLOADER, password)}` },
    body: form,
  });
  if (up.status !== 201) throw new Error(`upload answered ${up.status}: ${await up.text()}`);
  return loginAs(url, DEVICE, password);
}

interface LoadResult {
  cache: boolean;
  connections: number;
  seconds: number;
  requests: number;
  envelopesPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** Mean ms per request of each step inside the server, and the server's own total. */
  perRequestMs: Record<(typeof STEPS)[number] | 'other' | 'server', number>;
  /** Server CPU per request, ms, and the share of one core it kept busy. */
  serverCpuMsPerRequest: number;
  serverCores: number;
  hits: number;
  misses: number;
  serverRssMb: number;
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

interface ProfileRun {
  envelopes: number;
  /** Self CPU ms per envelope by area, and the top functions, over the profiled run. */
  areas: Array<{ area: string; msPerEnvelope: number }>;
  top: Array<{ fn: string; area: string; msPerEnvelope: number }>;
}

/** A shorter run with the cache under the V8 profiler (slower, so its rate is not reported). */
async function profileRun(server: ServerChild, token: string, password: string) {
  const body = JSON.stringify({ fileName: NAME, password, hardware: HARDWARE });
  await server.ask({ type: 'reset', profile: true });
  await autocannon({
    url: `${server.url}/resources/get/${FOLDER}`,
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body,
    connections,
    duration: Math.min(duration, 5),
  });
  const m = await server.ask({ type: 'stats' });
  if (m.type !== 'stats' || m.stats.profile === undefined) throw new Error('no profile came back');
  const n = Math.max(m.stats.ok, 1);
  const per = (ms: number) => round(ms / n, 3);
  return {
    envelopes: m.stats.ok,
    areas: m.stats.profile.areas.map((a) => ({ area: a.area, msPerEnvelope: per(a.ms) })),
    top: m.stats.profile.top.map((t) => ({ fn: t.fn, area: t.area, msPerEnvelope: per(t.ms) })),
  } satisfies ProfileRun;
}

async function measure(
  server: ServerChild,
  token: string,
  password: string,
  cache: boolean,
): Promise<LoadResult> {
  const body = JSON.stringify({ fileName: NAME, password, hardware: HARDWARE });
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  // The first envelope binds the device (and, with the cache, fills it): not part of the load.
  const first = await fetch(`${server.url}/resources/get/${FOLDER}`, {
    method: 'POST',
    headers,
    body,
  });
  if (first.status !== 200) throw new Error(`first envelope answered ${first.status}`);
  await first.arrayBuffer();
  await server.ask({ type: 'reset' });
  const result = await autocannon({
    url: `${server.url}/resources/get/${FOLDER}`,
    method: 'POST',
    headers,
    body,
    connections,
    ...(cache ? { duration } : { amount: uncachedRequests }),
    timeout: 60,
  });
  const m = await server.ask({ type: 'stats' });
  if (m.type !== 'stats') throw new Error(`apiServer said ${m.type}`);
  const stats: ApiServerStats = m.stats;
  if (result.errors > 0 || result.non2xx > 0 || result['2xx'] === 0) {
    throw new Error(
      `load run had ${result.errors} errors, ${result.non2xx} non-2xx answers, ${result['2xx']} 2xx`,
    );
  }
  const n = Math.max(stats.count, 1);
  const per: Record<string, number> = {};
  let stepSum = 0;
  for (const step of STEPS) {
    const ms = (stats.stepsMs[step] ?? 0) / n;
    per[step] = round(ms, 3);
    stepSum += ms;
  }
  per.other = round(stats.serverMs / n - stepSum, 3);
  per.server = round(stats.serverMs / n, 3);
  const cpuMs = stats.cpuUserMs + stats.cpuSystemMs;
  return {
    cache,
    connections,
    seconds: result.duration,
    requests: result['2xx'],
    envelopesPerSecond: round(result['2xx'] / result.duration, 1),
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
    perRequestMs: per as LoadResult['perRequestMs'],
    serverCpuMsPerRequest: round(cpuMs / n, 3),
    serverCores: round(cpuMs / stats.wallMs, 2),
    hits: stats.hits,
    misses: stats.misses,
    serverRssMb: Math.round(stats.rssMb),
  };
}

/** The device opens one envelope with the key it derives itself and finds the small part. */
async function checkEnvelope(url: string, token: string, password: string, small: Buffer) {
  const res = await call(url, 'POST', `/resources/get/${FOLDER}`, token, {
    fileName: NAME,
    password,
    hardware: HARDWARE,
  });
  const env = (await res.json()) as { resource: { folder: string; name: string; version: number } };
  const key = await deriveEnvelopeKey(DEVICE, password, HARDWARE);
  const payload = openEnvelope(key, env, envelopeAad(env.resource));
  if (!payload.small.equals(small) || payload.small.length !== SMALL_BYTES) {
    throw new Error('the envelope does not hold the 64 KiB small part');
  }
}

async function main(): Promise<void> {
  log(
    `sluice bench:api — ${connections} connections, ${duration} s with the cache, ${uncachedRequests} requests without, in ${dir} (crypto backend: ${backend().kind})`,
  );
  const loadBefore = loadavg();
  const src = join(dir, 'plain.bin');
  await writeFile(src, randomBytes(PLAIN_BYTES));
  const split = await sealAndSplit(src, {
    paths: { small: `${src}.small`, big: `${src}.big` },
    smallSizeKB: 64,
  });
  const sealed: Sealed = {
    manifest: split.manifest,
    dataKey: split.key,
    small: await readFile(split.smallPath),
    big: await readFile(split.bigPath),
  };
  if (sealed.small.length !== SMALL_BYTES) throw new Error(`small part is ${sealed.small.length}`);
  const password = randomBytes(18).toString('base64url');

  const runs: LoadResult[] = [];
  let profiled: ProfileRun | undefined;
  for (const cache of [false, true]) {
    const server = await startServerChild(cache ? 'cached' : 'uncached', password, cache);
    try {
      const token = await prepare(server.url, password, sealed);
      log(`envelope cache ${cache ? 'on' : 'off'}: loading…`);
      const r = await measure(server, token, password, cache);
      await checkEnvelope(server.url, token, password, sealed.small);
      if (cache && args.profile) {
        log('envelope cache on, under the CPU profiler…');
        profiled = await profileRun(server, token, password);
      }
      log(
        `  ${r.envelopesPerSecond} envelopes/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, server ${r.perRequestMs.server} ms and ${r.serverCpuMsPerRequest} ms CPU per request`,
      );
      runs.push(r);
    } finally {
      await server.close();
    }
  }
  const [uncached, cached] = runs as [LoadResult, LoadResult];
  const result = {
    bench: 'api' as const,
    envelopesPerSecond: cached.envelopesPerSecond,
    p99Ms: cached.latencyMs.p99,
    uncachedEnvelopesPerSecond: uncached.envelopesPerSecond,
    cacheSpeedup: round(cached.envelopesPerSecond / uncached.envelopesPerSecond, 1),
    serverCpuMsPerEnvelope: cached.serverCpuMsPerRequest,
    smallPartBytes: SMALL_BYTES,
    kdf: { ...ENVELOPE_KDF },
    connections,
    durationSeconds: duration,
    runs: { uncached, cached },
    ...(profiled === undefined ? {} : { profile: profiled }),
    load: { before: loadBefore.map((x) => round(x)), after: loadavg().map((x) => round(x)) },
    targets: { envelopesPerSecond: { op: '≥', value: ENVELOPES_PER_SECOND_TARGET } },
    targetsMet: { envelopesPerSecond: cached.envelopesPerSecond >= ENVELOPES_PER_SECOND_TARGET },
    machine: machineInfo(),
  };
  if (!args['no-write']) writeBenchmarkSection('api', renderMarkdown(result));
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    log(
      `${result.targetsMet.envelopesPerSecond ? 'met ' : 'MISS'} envelopesPerSecond = ${result.envelopesPerSecond} (≥ ${ENVELOPES_PER_SECOND_TARGET})`,
    );
  }
}

type ApiResult = {
  envelopesPerSecond: number;
  p99Ms: number;
  uncachedEnvelopesPerSecond: number;
  cacheSpeedup: number;
  serverCpuMsPerEnvelope: number;
  connections: number;
  durationSeconds: number;
  runs: { uncached: LoadResult; cached: LoadResult };
  profile?: ProfileRun;
  load: { before: number[]; after: number[] };
  targetsMet: { envelopesPerSecond: boolean };
  machine: ReturnType<typeof machineInfo>;
};

/** Three significant figures at most: 6002.835 → 6003, 1.432 → 1.43, 0.0234 → 0.023. */
function f(x: number): string {
  const abs = Math.abs(x);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return String(Number(x.toFixed(digits)));
}

function renderMarkdown(r: ApiResult): string {
  const { uncached: u, cached: c } = r.runs;
  const stepRows = ([...STEPS, 'other'] as const).map(
    (s) => `| ${STEP_LABEL[s]} | ${f(u.perRequestMs[s])} | ${f(c.perRequestMs[s])} |`,
  );
  const idleCeiling = (2 * 1000) / u.serverCpuMsPerRequest;
  const oneCoreCeiling = 1000 / c.serverCpuMsPerRequest;
  const coresNeeded = (ENVELOPES_PER_SECOND_TARGET * c.serverCpuMsPerRequest) / 1000;
  return [
    '## API: device envelopes (`pnpm bench:api`)',
    '',
    `Machine: ${r.machine.summary}. Load average ${r.load.before.join(' / ')} before, ${r.load.after.join(' / ')} after: a shared machine, other work ran at the same time, so the figures are noisy.`,
    '',
    `\`POST /resources/get/{folder}\` for a resource whose small part is 64 KiB, one authenticated device user (device already bound), ${r.connections} autocannon connections on loopback (${u.requests} requests without the cache, ${r.durationSeconds} s with it); the server is a child process with the default scrypt cost (password hashes N = 2^15, r = 8, p = 1; the envelope KDF of docs/FORMAT.md, N = 2^15, r = 8, p = 1), once with its envelope cache off (\`SLUICE_ENVELOPE_CACHE=off\`) and once on. The steps are the means per request of the wall times the route reports in \`Server-Timing\` (\`SLUICE_SERVER_TIMING=1\`); "time in the server" is from the request's arrival to its response.`,
    '',
    '| | envelope cache off | envelope cache on |',
    '| --- | ---: | ---: |',
    `| envelopes/s | ${f(u.envelopesPerSecond)} | **${f(c.envelopesPerSecond)}** |`,
    `| latency p50 / p99 / max (ms) | ${u.latencyMs.p50} / ${u.latencyMs.p99} / ${u.latencyMs.max} | ${c.latencyMs.p50} / ${c.latencyMs.p99} / ${c.latencyMs.max} |`,
    `| envelopes in the run (s) | ${u.requests} (${f(u.seconds)}) | ${c.requests} (${f(c.seconds)}) |`,
    `| server CPU per envelope (ms) | ${f(u.serverCpuMsPerRequest)} | ${f(c.serverCpuMsPerRequest)} |`,
    `| cores the server got | ${f(u.serverCores)} | ${f(c.serverCores)} |`,
    `| **time in the server per envelope (ms)** | **${f(u.perRequestMs.server)}** | **${f(c.perRequestMs.server)}** |`,
    ...stepRows,
    '',
    '| target | value | target | |',
    '| --- | ---: | ---: | --- |',
    `| envelopesPerSecond (cache on) | ${f(r.envelopesPerSecond)} | ≥ ${ENVELOPES_PER_SECOND_TARGET} | ${r.targetsMet.envelopesPerSecond ? 'met' : '**missed**'} |`,
    `| p99 latency (cache on) | ${r.p99Ms} ms | | |`,
    '',
    `**Without the cache** every envelope runs scrypt twice (the password check against the stored hash, then the envelope KDF): ${f(u.serverCpuMsPerRequest)} ms of CPU per envelope, all of it scrypt, so at most about ${f(idleCeiling)} envelopes/s with both cores to itself. The ${r.connections} connections' scrypt runs queue for libuv's 4 threads, which the small part's file read also waits for; the latency is that queue.`,
    '',
    `**With the cache** (docs/API.md, "Envelope cache": per (user, device), the envelope key derived after a full verification, under an HMAC of the password and the user record, for 10 minutes; small parts by bytes) neither scrypt runs again and the small part is not read; the KDF is not weakened (each entry cost one full verification) and every envelope still gets a fresh GCM nonce. What is left is ${f(c.serverCpuMsPerRequest)} ms of CPU per envelope: sealing (the payload's JSON with the small part in base64, AES-256-GCM, base64 again: ~87 KB in, ~117 KB out), the access token's EdDSA check, HTTP and sending. The timed steps are wall times, stretched when the process is descheduled; "the rest" is mostly waiting among ${r.connections} connections.`,
    '',
    ...(r.profile === undefined
      ? []
      : [
          `**CPU profile** (\`--profile\`: a further ${r.profile.envelopes} envelopes with the cache under the V8 sampling profiler, main thread only; self time by where the code lives, built-ins such as JSON.stringify or base64 counted with their caller), ms per envelope:`,
          '',
          '| area | ms per envelope |',
          '| --- | ---: |',
          ...r.profile.areas.map((a) => `| ${a.area} | ${f(a.msPerEnvelope)} |`),
          '',
          `Top functions: ${r.profile.top
            .slice(0, 8)
            .map((t) => `\`${t.fn}\` ${f(t.msPerEnvelope)} (${t.area.split(' ')[0]})`)
            .join(', ')}.`,
          '',
        ]),
    `**What limits it**: the server runs on one event loop, so its ceiling is about 1000 / ${f(c.serverCpuMsPerRequest)} ≈ ${f(oneCoreCeiling)} envelopes/s; the target needs ${f(coresNeeded)} of a core. In this run the server got ${f(c.serverCores)} cores (the load generator in the parent process and the other work on the machine took the rest), hence ${f(c.envelopesPerSecond)} envelopes/s, ${f(r.cacheSpeedup)}× the uncached rate.`,
  ].join('\n');
}

try {
  await main();
} finally {
  removeAll();
}
