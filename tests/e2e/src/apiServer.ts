import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session, SluiceError } from '@sluice/core';
import {
  createServer,
  initAdmin,
  type ScryptParams,
  type ServerOptions,
  type SluiceServer,
} from '@sluice/server';
import { afterEach } from 'vitest';

/** Cheaper than the server default so suites with many logins stay fast; same format. */
export const TEST_SCRYPT: ScryptParams = { logN: 12, r: 8, p: 1 };
export const ADMIN_EMAIL = 'admin@example.com';
export const PASSWORD = 'correct horse battery staple';
export const UPLOADER = 'uploader@example.com';
export const DEVICE_USER = 'device@example.com';
export const MiB = 1024 * 1024;

/** Lower-case hex SHA-256, e.g. of a pulled plaintext or as a stand-in hardware hash. */
export const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A Session signed in as `email` (PASSWORD), optionally with another `authExpiryThreshold`. */
export async function signedIn(
  api: ApiServer,
  email: string,
  threshold?: number,
): Promise<Session> {
  const s = new Session({
    apiUrl: api.url,
    ...(threshold === undefined ? {} : { authExpiryThreshold: threshold }),
  });
  s.setCredentials(email, PASSWORD);
  await s.login();
  return s;
}

export interface ApiServer {
  server: SluiceServer;
  url: string;
  port: number;
  dataDir: string;
  /** Requests that reached the server, by `METHOD /path` (query stripped). */
  hits: Map<string, number>;
  hitCount(key: string): number;
  close(): Promise<void>;
}

export interface StartOptions extends Partial<ServerOptions> {
  /** Listen on this port (a restart on the port of a previous instance). */
  port?: number;
  /** Add routes before the server listens (they go through the same guard). */
  beforeListen?: (server: SluiceServer) => void | Promise<void>;
}

export async function tempDir(prefix = 'sluice-e2e-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** A fresh data directory with its first ApiAdmin (ADMIN_EMAIL / PASSWORD). */
export async function initDataDir(): Promise<string> {
  const dataDir = await tempDir();
  await initAdmin(dataDir, ADMIN_EMAIL, PASSWORD, { scrypt: TEST_SCRYPT });
  return dataDir;
}

/** The real resource API on loopback over `dataDir` (a fresh, initialised one by default). */
export async function startApi(options: StartOptions = {}): Promise<ApiServer> {
  const { port = 0, beforeListen, ...rest } = options;
  const dataDir = rest.dataDir ?? (await initDataDir());
  const server = await createServer({ scrypt: TEST_SCRYPT, ...rest, dataDir });
  const hits = new Map<string, number>();
  server.app.addHook('onRequest', async (request) => {
    const key = `${request.method} ${request.url.split('?')[0]}`;
    hits.set(key, (hits.get(key) ?? 0) + 1);
  });
  await beforeListen?.(server);
  const url = await server.app.listen({ host: '127.0.0.1', port });
  return {
    server,
    url,
    port: Number(new URL(url).port),
    dataDir,
    hits,
    hitCount: (key) => hits.get(key) ?? 0,
    close: () => server.close(),
  };
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Creates a user through the admin API (`POST /users`) with a token of the first admin. */
export async function createUserViaApi(
  api: ApiServer,
  email: string,
  role: string,
  password = PASSWORD,
): Promise<void> {
  const login = await fetch(`${api.url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: ADMIN_EMAIL, password: PASSWORD }),
  });
  const { accessToken } = (await login.json()) as { accessToken: string };
  const res = await fetch(`${api.url}/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${accessToken}` },
    body: JSON.stringify({ email, password, role }),
  });
  if (res.status !== 201) throw new Error(`creating ${email} answered ${res.status}`);
}

/** The SluiceError `p` rejects with (any other outcome fails the test). */
export async function rejection(p: Promise<unknown>): Promise<SluiceError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SluiceError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

/** A fetch that records every call (method and path) before passing it on. */
export function countingFetch(calls: string[], inner: typeof fetch = fetch): typeof fetch {
  return (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    calls.push(`${init?.method ?? 'GET'} ${url.pathname}`);
    return inner(input, init);
  };
}

const cleanups: (() => Promise<void>)[] = [];
// Registered once per test file (each file imports this module afresh).
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** Runs `fn` after the current test; the last registered runs first. */
export function onCleanup(fn: () => Promise<void>): void {
  cleanups.push(fn);
}

/**
 * startApi for one test: `close()` may be called by the test (it is idempotent); after the test
 * the server is closed if still open and its data directory removed.
 */
export async function startForTest(options: StartOptions = {}): Promise<ApiServer> {
  const api = await startApi(options);
  let open = true;
  const close = api.close;
  api.close = async () => {
    if (!open) return;
    open = false;
    await close();
  };
  onCleanup(async () => {
    await api.close();
    await removeDir(api.dataDir);
  });
  return api;
}
