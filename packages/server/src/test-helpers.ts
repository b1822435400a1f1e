import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Role } from '@sluice/protocol';
import { createServer, type SluiceServer } from './app/createServer.js';
import type { ServerOptions } from './app/settings.js';
import type { ScryptParams } from './auth/passwordHash.js';
import type { UserRecord } from './stores/records.js';
import { createUser } from './users/service.js';

/** Cheaper than the default so suites with many logins stay fast; the format is the same. */
export const TEST_SCRYPT: ScryptParams = { logN: 12, r: 8, p: 1 };

export async function tempDir(prefix = 'sluice-server-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export interface Running {
  server: SluiceServer;
  url: string;
  dataDir: string;
  close(): Promise<void>;
}

/**
 * The real server on a free loopback port over `dataDir` (a new temp dir by default). `beforeListen`
 * can add routes (they go through the same guard) before the server starts listening.
 */
export async function startServer(
  options: Partial<ServerOptions> & {
    beforeListen?: (server: SluiceServer) => void | Promise<void>;
  } = {},
): Promise<Running> {
  const { beforeListen, ...rest } = options;
  const dataDir = rest.dataDir ?? (await tempDir());
  const backend = await storeBackendFor(dataDir, rest);
  const server = await createServer({ scrypt: TEST_SCRYPT, ...backend, ...rest, dataDir });
  await beforeListen?.(server);
  const address = await server.app.listen({ host: '127.0.0.1', port: 0 });
  return { server, url: address, dataDir, close: () => server.close() };
}

/** The database and bucket a data directory's servers use under SLUICE_TEST_STORE=postgres. */
const pgBackends = new Map<string, Pick<ServerOptions, 'databaseUrl' | 'storage'>>();

/**
 * With SLUICE_TEST_STORE=postgres (the test command's `server-pg` stage), a server that names
 * neither a database nor a storage runs on PostgreSQL (a fresh database per data directory, the
 * same one when a test restarts a server over that directory) with its parts in a fresh bucket
 * of the test Ceph RGW: the server suites run once on each store backend.
 */
async function storeBackendFor(
  dataDir: string,
  options: Partial<ServerOptions>,
): Promise<Pick<ServerOptions, 'databaseUrl' | 'storage'>> {
  if (process.env.SLUICE_TEST_STORE !== 'postgres') return {};
  if (options.databaseUrl !== undefined || options.storage !== undefined) return {};
  const known = pgBackends.get(dataDir);
  if (known !== undefined) return known;
  const s3 = s3TestEnv();
  if (s3 === undefined) throw new Error('SLUICE_TEST_STORE=postgres needs SLUICE_TEST_S3_*');
  const { freshDatabase } = await import('./test-postgres.js');
  const db = await freshDatabase();
  const backend = {
    databaseUrl: db.url,
    storage: {
      kind: 's3' as const,
      endpoint: s3.endpoint,
      region: s3.region,
      bucket: uniqueBucket('pgstore'),
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    },
  };
  pgBackends.set(dataDir, backend);
  return backend;
}

/** Whether this run's servers keep their records in PostgreSQL (and parts on S3). */
export const ON_POSTGRES = process.env.SLUICE_TEST_STORE === 'postgres';

export const PASSWORD = 'correct horse battery staple';

/** Adds a user straight to the store of a running server (as `initAdmin` or `POST /users` do). */
export async function addUser(running: Running, email: string, role: Role, password = PASSWORD) {
  return createUser(running.server.store, { email, password, role }, { scrypt: TEST_SCRYPT });
}

/** Changes fields of the user `id` straight in the store (what an admin route would do). */
export async function patchUser(
  running: Running,
  id: string,
  patch: Partial<Omit<UserRecord, 'id'>>,
): Promise<void> {
  await running.server.store.transaction(async (t) => {
    const u = await t.users.get(id);
    if (u === undefined) throw new Error(`no user ${id}`);
    await t.users.update({ ...u, ...patch });
  });
}

/** `folder/name` of every stored resource, sorted. */
export function resourceNames(running: Running): Promise<string[]> {
  return running.server.store.resources.names();
}

export interface Reply {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

/** One real HTTP request; JSON bodies are sent and parsed. */
export async function call(
  url: string,
  method: string,
  path: string,
  options: { json?: unknown; body?: string; token?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | undefined = options.body;
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.json);
  }
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const res = await fetch(`${url}${path}`, { method, headers, body: body ?? null });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

export interface LoginBody {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  tokenType: string;
  refreshExpiresAt: string;
}

export async function login(url: string, email: string, password = PASSWORD): Promise<LoginBody> {
  const r = await call(url, 'POST', '/login', { json: { email, password } });
  if (r.status !== 200) throw new Error(`login of ${email} failed with ${r.status}: ${r.text}`);
  return r.body as LoginBody;
}

/** The S3 store the S3 tests run against (a Ceph RGW started by scripts/ceph/ceph.mjs). */
export interface S3TestEnv {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  readAccessKeyId: string;
  readSecretAccessKey: string;
}

/**
 * The SLUICE_TEST_S3_* variables, or undefined when they are absent: the caller skips its S3
 * tests and this prints one line saying how to enable them. With CI=true it throws instead.
 */
export function s3TestEnv(): S3TestEnv | undefined {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const e = process.env;
  const endpoint = e.SLUICE_TEST_S3_ENDPOINT;
  const accessKeyId = e.SLUICE_TEST_S3_ACCESS_KEY;
  const secretAccessKey = e.SLUICE_TEST_S3_SECRET_KEY;
  const enable =
    'to run them: eval "$(node scripts/ceph/ceph.mjs start --dir /tmp/sluice-ceph)" (or set SLUICE_TEST_S3_ENDPOINT, _REGION, _ACCESS_KEY, _SECRET_KEY for an existing store)';
  if (!endpoint || !accessKeyId || !secretAccessKey) {
    if (e.CI === 'true') {
      throw new Error(
        `SLUICE_TEST_S3_* are not set and CI=true: S3 tests never skip in CI; ${enable}`,
      );
    }
    console.warn(`server S3 tests skipped: SLUICE_TEST_S3_ENDPOINT is not set; ${enable}`);
    return undefined;
  }
  return {
    endpoint,
    region: e.SLUICE_TEST_S3_REGION || 'us-east-1',
    accessKeyId,
    secretAccessKey,
    readAccessKeyId: e.SLUICE_TEST_S3_READ_ACCESS_KEY || accessKeyId,
    readSecretAccessKey: e.SLUICE_TEST_S3_READ_SECRET_KEY || secretAccessKey,
  };
}

/** A bucket name no other test run uses. */
export function uniqueBucket(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${randomSuffix()}`;
}

function randomSuffix(): string {
  return Math.random().toString(36).slice(2, 8);
}

/** Runs every cleanup step, last registered first, even when one fails; then throws the first error. */
export async function runCleanup(steps: (() => Promise<void>)[]): Promise<void> {
  let first: unknown;
  for (const step of steps.splice(0).reverse()) {
    try {
      await step();
    } catch (e) {
      first ??= e;
    }
  }
  if (first !== undefined) throw first;
}

/** The parts of a `POST /resources/:folder` body, in the order they are sent. */
export type UploadPart = [field: string, value: string | Buffer];

/** One multipart upload; Buffers go as file parts. */
export async function uploadParts(
  url: string,
  token: string,
  folder: string,
  parts: UploadPart[],
): Promise<Reply> {
  const form = new FormData();
  for (const [field, value] of parts) {
    if (typeof value === 'string') form.append(field, value);
    else form.append(field, new Blob([value]), field);
  }
  const res = await fetch(`${url}/resources/${folder}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    body: form,
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text === '' ? undefined : JSON.parse(text),
    text,
  };
}

/**
 * A self-signed P-256 certificate for 127.0.0.1 and localhost made by the `openssl` CLI in `dir`:
 * the PEM texts and their paths.
 */
export function selfSignedCert(dir: string): {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
} {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
      ...['-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=localhost'],
      ...['-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
    ],
    { stdio: 'ignore' },
  );
  return {
    cert: readFileSync(certFile, 'utf8'),
    key: readFileSync(keyFile, 'utf8'),
    certFile,
    keyFile,
  };
}
