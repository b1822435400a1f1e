// What bench:fleet measures on one target (one or two instances) at one fleet size, all through
// the API on loopback: logins/s, then one at a time the first device binds, refreshes and user
// creations, paging through GET /users, and envelopes/s of bound devices under load.
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { TokenResponse } from '@sluice/core';
import autocannon from 'autocannon';
import { ADMIN_EMAIL, deviceEmail, deviceHardware, FOLDER, NAME } from './fleetAccounts.js';
import type { ServerChild } from './fleetChild.js';
import { expectCall, type Latency, latencyOf, pool, type Timed } from './fleetHttp.js';

export type TargetId = 'embedded' | 'postgres' | 'twoInstances';

/** Where requests go: one instance, or two taken in turn (request k goes to instance k mod 2). */
export interface Target {
  id: TargetId;
  instances: ServerChild[];
  /** CPU ms used so far by the database server's processes (PostgreSQL), if it has its own. */
  databaseCpuMs?: () => number;
}

export interface MeasureOptions {
  password: string;
  /** Logins, first binds and user creations per target and size. */
  samples: number;
  /** Refreshes per login (sequential, each with the token the previous one returned). */
  refreshRounds: number;
  /** Concurrent connections of the logins and the envelope load. */
  connections: number;
  /** Seconds of envelope load. */
  duration: number;
  /** Bound devices the envelope load takes in turn. */
  envelopeDevices: number;
}

export interface PagingRun {
  pages: number;
  users: number;
  seconds: number;
  page: Latency;
  firstPage: { ms: number; storeMs: number };
  /** The page whose store time was the longest (`at`: its index, 0 the first). */
  slowestPage: { at: number; ms: number; storeMs: number };
}

export interface EnvelopeRun {
  perSecond: number;
  requests: number;
  seconds: number;
  /** The worst instance's autocannon percentiles, ms. */
  p50: number;
  p99: number;
  serverCpuMsPerEnvelope: number;
  databaseCpuMsPerEnvelope: number | null;
  /** Store calls and store ms of one cached envelope (the warm-up's last, alone). */
  storeCalls: number;
  storeMs: number;
}

export interface SizeRun {
  accounts: number;
  /** The 1-minute load average when this target's run at this size began. */
  load1: number;
  logins: { perSecond: number; n: number; latency: Latency };
  bind: Latency;
  refresh: Latency;
  create: Latency;
  paging: PagingRun;
  envelopes: EnvelopeRun;
}

interface Device {
  hardware: string;
  accessToken: string;
  refreshToken: string;
}

const urlOf = (t: Target, k: number) => (t.instances[k % t.instances.length] as ServerChild).url;
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Logs in the accounts numbered `picked`, `connections` at a time; the devices and the rate. */
async function logins(t: Target, picked: number[], o: MeasureOptions) {
  const t0 = performance.now();
  const answers = await pool(picked.length, o.connections, (k) =>
    expectCall(200, urlOf(t, k), 'POST', '/login', undefined, {
      email: deviceEmail(picked[k] as number),
      password: o.password,
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const devices = answers.map((a, k): Device => {
    const tokens = a.body as TokenResponse;
    const hardware = deviceHardware(picked[k] as number);
    return { hardware, accessToken: tokens.accessToken, refreshToken: tokens.refreshToken };
  });
  // Under concurrency the store time of one request includes the others': only latency here.
  const latency = latencyOf(answers.map((a) => ({ ms: a.ms, storeMs: Number.NaN })));
  return { devices, run: { perSecond: round(picked.length / seconds), n: picked.length, latency } };
}

function envelopeBody(o: MeasureOptions, d: Device) {
  return { fileName: NAME, password: o.password, hardware: d.hardware };
}

/** The first envelope of each never-bound account, one at a time: each binds its device. */
async function binds(t: Target, devices: Device[], o: MeasureOptions): Promise<Latency> {
  const samples: Timed[] = [];
  for (const [k, d] of devices.entries()) {
    const path = `/resources/get/${FOLDER}`;
    const r = await expectCall(200, urlOf(t, k), 'POST', path, d.accessToken, envelopeBody(o, d));
    if (!r.timing?.includes('cache;desc=miss')) {
      throw new Error(`a first envelope was not a cache miss (Server-Timing: ${r.timing})`);
    }
    samples.push(r);
  }
  return latencyOf(samples);
}

/** `refreshRounds` refreshes of every login, one at a time, each with the newest token. */
async function refreshes(t: Target, devices: Device[], o: MeasureOptions): Promise<Latency> {
  const samples: Timed[] = [];
  for (let round = 0; round < o.refreshRounds; round++) {
    for (const d of devices) {
      const r = await expectCall(
        200,
        urlOf(t, samples.length),
        'POST',
        '/token/refresh',
        undefined,
        {
          refreshToken: d.refreshToken,
        },
      );
      const tokens = r.body as TokenResponse;
      d.accessToken = tokens.accessToken;
      d.refreshToken = tokens.refreshToken;
      samples.push(r);
    }
  }
  return latencyOf(samples);
}

/** `samples` new Operators created by the Admin, one at a time. */
async function creations(t: Target, admin: string, tag: string, o: MeasureOptions) {
  const samples: Timed[] = [];
  for (let k = 0; k < o.samples; k++) {
    const email = `created-${tag}-${k}@fleet.invalid`;
    const body = { email, password: o.password, role: 'Operator' };
    samples.push(await expectCall(201, urlOf(t, k), 'POST', '/users', admin, body));
  }
  return latencyOf(samples);
}

/** Every page of GET /users?limit=1000, following nextCursor. */
async function paging(t: Target, admin: string): Promise<PagingRun> {
  const pages: Timed[] = [];
  let users = 0;
  let cursor: string | undefined;
  const t0 = performance.now();
  do {
    const after = cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    const r = await expectCall(
      200,
      urlOf(t, pages.length),
      'GET',
      `/users?limit=1000${after}`,
      admin,
    );
    const body = r.body as { users: unknown[]; nextCursor?: string };
    users += body.users.length;
    cursor = body.nextCursor;
    pages.push(r);
  } while (cursor !== undefined);
  const seconds = (performance.now() - t0) / 1000;
  const first = pages[0] as Timed;
  let at = 0;
  for (const [i, pg] of pages.entries()) if (pg.storeMs > (pages[at] as Timed).storeMs) at = i;
  const slowest = pages[at] as Timed;
  return {
    pages: pages.length,
    users,
    seconds: round(seconds, 3),
    page: latencyOf(pages),
    firstPage: { ms: round(first.ms, 3), storeMs: first.storeMs },
    slowestPage: { at, ms: round(slowest.ms, 3), storeMs: slowest.storeMs },
  };
}

/** One instance's share of the envelope load: its connections take the devices in turn. */
function envelopeLoad(url: string, devices: Device[], connections: number, o: MeasureOptions) {
  let k = 0;
  return autocannon({
    url: `${url}/resources/get/${FOLDER}`,
    method: 'POST',
    connections,
    duration: o.duration,
    requests: [
      {
        setupRequest: (request) => {
          const d = devices[k++ % devices.length] as Device;
          return {
            ...request,
            headers: {
              authorization: `Bearer ${d.accessToken}`,
              'content-type': 'application/json',
            },
            body: JSON.stringify(envelopeBody(o, d)),
          };
        },
      },
    ],
  });
}

/**
 * Every device asks each instance twice; the second answer must come from the envelope cache.
 * Returns the last of those (a cached envelope, alone on the server).
 */
async function warmUp(t: Target, devices: Device[], o: MeasureOptions): Promise<Timed> {
  const path = `/resources/get/${FOLDER}`;
  let again: Timed | undefined;
  for (const server of t.instances) {
    for (const d of devices) {
      const ask = () =>
        expectCall(200, server.url, 'POST', path, d.accessToken, envelopeBody(o, d));
      await ask();
      again = await ask();
      if (!again.timing?.includes('cache;desc=hit')) {
        throw new Error('a repeated envelope missed the cache');
      }
    }
  }
  if (again === undefined) throw new Error('no device to warm up');
  return again;
}

/**
 * Envelopes/s of bound devices once warmed up: `connections` connections, split over the
 * instances, load them for `duration` seconds.
 */
async function envelopes(t: Target, devices: Device[], o: MeasureOptions): Promise<EnvelopeRun> {
  const cached = await warmUp(t, devices, o);
  const cpu0 = await Promise.all(t.instances.map((s) => s.cpuMs()));
  const db0 = t.databaseCpuMs?.();
  const each = Math.max(1, Math.floor(o.connections / t.instances.length));
  const results = await Promise.all(t.instances.map((s) => envelopeLoad(s.url, devices, each, o)));
  const cpu1 = await Promise.all(t.instances.map((s) => s.cpuMs()));
  const db1 = t.databaseCpuMs?.();
  for (const r of results) {
    if (r.errors > 0 || r.non2xx > 0 || r['2xx'] === 0) {
      throw new Error(`envelope load: ${r.errors} errors, ${r.non2xx} non-2xx, ${r['2xx']} 2xx`);
    }
  }
  const requests = results.reduce((a, r) => a + r['2xx'], 0);
  const seconds = Math.max(...results.map((r) => r.duration));
  const serverCpu = cpu1.reduce((a, c, i) => a + c - (cpu0[i] as number), 0);
  return {
    perSecond: round(requests / seconds),
    requests,
    seconds: round(seconds, 2),
    p50: Math.max(...results.map((r) => r.latency.p50)),
    p99: Math.max(...results.map((r) => r.latency.p99)),
    serverCpuMsPerEnvelope: round(serverCpu / requests, 3),
    databaseCpuMsPerEnvelope:
      db0 === undefined || db1 === undefined ? null : round((db1 - db0) / requests, 3),
    storeCalls: cached.storeCalls,
    storeMs: cached.storeMs,
  };
}

/**
 * Everything at one size: `picked` are never-used accounts (logged in, then bound); `tag` makes
 * the created accounts' emails unique.
 */
export async function measureSize(
  t: Target,
  accounts: number,
  picked: number[],
  tag: string,
  o: MeasureOptions,
): Promise<SizeRun> {
  const load1 = Math.round((loadavg()[0] ?? 0) * 100) / 100;
  const adminLogin = await expectCall(200, urlOf(t, 0), 'POST', '/login', undefined, {
    email: ADMIN_EMAIL,
    password: o.password,
  });
  const admin = (adminLogin.body as TokenResponse).accessToken;
  const { devices, run: loginRun } = await logins(t, picked, o);
  const bind = await binds(t, devices, o);
  const refresh = await refreshes(t, devices, o);
  const create = await creations(t, admin, tag, o);
  const pages = await paging(t, admin);
  const load = await envelopes(t, devices.slice(0, o.envelopeDevices), o);
  return {
    accounts,
    load1,
    logins: loginRun,
    bind,
    refresh,
    create,
    paging: pages,
    envelopes: load,
  };
}
