// The API calls of bench:fleet, each timed from sending the request to the last byte of the
// answer, with the store time the instance reports (`x-fleet-store-ms`, fleetServer.ts).
import { performance } from 'node:perf_hooks';

export interface Timed {
  ms: number;
  storeMs: number;
  /** Queries and transactions the request made. */
  storeCalls: number;
  status: number;
  body: unknown;
  /** The `Server-Timing` header (the envelope route's steps, `cache;desc=hit|miss`). */
  timing: string | null;
}

/** One request as JSON; `token` is an access token. Resolves whatever the status. */
export async function timedCall(
  url: string,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<Timed> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = JSON.stringify(body);
  const t0 = performance.now();
  const res = await fetch(`${url}${path}`, init);
  const text = await res.text();
  const ms = performance.now() - t0;
  let parsed: unknown = text;
  if ((res.headers.get('content-type') ?? '').startsWith('application/json')) {
    parsed = JSON.parse(text) as unknown;
  }
  const storeMs = Number(res.headers.get('x-fleet-store-ms') ?? Number.NaN);
  const storeCalls = Number(res.headers.get('x-fleet-store-calls') ?? Number.NaN);
  const timing = res.headers.get('server-timing');
  return { ms, storeMs, storeCalls, status: res.status, body: parsed, timing };
}

/** `timedCall` that throws unless the answer has status `want`. */
export async function expectCall(
  want: number,
  url: string,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<Timed> {
  const r = await timedCall(url, method, path, token, body);
  if (r.status !== want) {
    const text = typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
    throw new Error(`${method} ${path} answered ${r.status}, not ${want}: ${text.slice(0, 200)}`);
  }
  return r;
}

/** Latency percentiles (nearest rank) of the whole request and of its time in the store, ms. */
export interface Latency {
  n: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
  storeP50: number;
  storeP99: number;
  storeMean: number;
  /** The 3 slowest samples: their index in the run, and their times. */
  slowest: Array<{ at: number; ms: number; storeMs: number }>;
}

const round = (x: number) => Math.round(x * 1000) / 1000;

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] as number;
}

export function latencyOf(samples: ReadonlyArray<{ ms: number; storeMs: number }>): Latency {
  const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
  const store = samples.map((s) => s.storeMs).sort((a, b) => a - b);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
  return {
    n: samples.length,
    p50: round(percentile(ms, 0.5)),
    p99: round(percentile(ms, 0.99)),
    max: round(ms.at(-1) ?? Number.NaN),
    mean: round(mean(ms)),
    storeP50: round(percentile(store, 0.5)),
    storeP99: round(percentile(store, 0.99)),
    storeMean: round(mean(store)),
    slowest: samples
      .map((x, at) => ({ at, ms: round(x.ms), storeMs: round(x.storeMs) }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 3),
  };
}

/** Runs `fn(0)` … `fn(count - 1)`, at most `concurrency` at a time; results in index order. */
export async function pool<T>(
  count: number,
  concurrency: number,
  fn: (i: number) => Promise<T>,
): Promise<T[]> {
  const out = new Array<T>(count);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) out[i] = await fn(i);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return out;
}
