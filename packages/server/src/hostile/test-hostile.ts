// Shared by the hostile-input suite (docs/SECURITY.md): the real server on loopback with its log
// lines captured, requests sent byte for byte, and the checks every case ends with.
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { type Manifest, sealAndSplit } from '@sluice/core';
import type { Role } from '@sluice/protocol';
import { expect } from 'vitest';
import type { ServerOptions } from '../app/settings.js';
import type { LoginLimits } from '../auth/loginLimiter.js';
import {
  addUser,
  call,
  login,
  type Reply,
  type Running,
  startServer,
  tempDir,
} from '../test-helpers.js';

/** High enough that no case trips the login limiter unless it means to. */
export const NO_LIMITS: LoginLimits = {
  perClient: { limit: 100_000, lockSeconds: 1, maxLockSeconds: 1, forgetSeconds: 60 },
  perAddress: { limit: 100_000, windowSeconds: 60 },
  perAccount: { limit: 100_000, windowSeconds: 60 },
  withToken: { limit: 100_000, lockSeconds: 1, maxLockSeconds: 1, forgetSeconds: 60 },
};

export interface Hostile extends Running {
  /** Every JSON log line the server wrote so far. */
  lines: string[];
  /** Access tokens of one user per role, logged in at start. */
  tokens: Record<Role, string>;
  emails: Record<Role, string>;
  ids: Record<Role, string>;
  /** An access token of a user no case touches: the health check's. */
  healthToken: string;
}

const ROLES: Role[] = ['ApiAdmin', 'Admin', 'ResourceUploader', 'Validator', 'Operator'];

/** The server with one user per role and a log stream captured at `level` (default trace). */
export async function startHostile(
  options: Partial<ServerOptions> & { level?: 'trace' | 'info' } = {},
): Promise<Hostile> {
  const { level = 'trace', ...rest } = options;
  const lines: string[] = [];
  const s = await startServer({
    loginLimits: NO_LIMITS,
    logger: { level, stream: { write: (line: string) => lines.push(line) } },
    ...rest,
  });
  const tokens = {} as Record<Role, string>;
  const emails = {} as Record<Role, string>;
  const ids = {} as Record<Role, string>;
  for (const role of ROLES) {
    const email = `${role.toLowerCase()}@example.test`;
    ids[role] = (await addUser(s, email, role)).id;
    emails[role] = email;
    tokens[role] = (await login(s.url, email)).accessToken;
  }
  await addUser(s, 'health@example.test', 'Operator');
  const healthToken = (await login(s.url, 'health@example.test')).accessToken;
  return { ...s, lines, tokens, emails, ids, healthToken };
}

/** After a case: the server still answers a normal request. */
export async function expectHealthy(h: Hostile): Promise<void> {
  const r = await call(h.url, 'GET', '/me', { token: h.healthToken });
  expect(r.status).toBe(200);
  expect(r.body).toMatchObject({ user: { email: 'health@example.test' } });
}

/** A `{ error, code }` answer with this status and code. */
export function expectError(r: RawReply | Reply, status: number, code: string): void {
  expect({ status: r.status, code: codeOf(r.body) }).toEqual({ status, code });
  expect(typeof (r.body as { error?: unknown }).error).toBe('string');
}

function codeOf(body: unknown): unknown {
  return typeof body === 'object' && body !== null ? (body as { code?: unknown }).code : undefined;
}

export interface RawReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: unknown;
}

/**
 * One request on a fresh connection with the path and body sent exactly as given (fetch would
 * normalise `..` and `%2e` segments and refuse some headers).
 */
export function raw(
  url: string,
  method: string,
  path: string,
  options: { headers?: Record<string, string | number>; body?: Buffer | string } = {},
): Promise<RawReply> {
  const u = new URL(url);
  const body = options.body === undefined ? undefined : Buffer.from(options.body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        agent: false,
        host: u.hostname,
        port: u.port,
        method,
        path,
        headers: {
          ...(body === undefined ? {} : { 'content-length': body.length }),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text === '' ? undefined : JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A multipart body, built by fetch's own encoder. */
export async function multipart(form: FormData): Promise<{ bytes: Buffer; type: string }> {
  const r = new Response(form);
  return { bytes: Buffer.from(await r.arrayBuffer()), type: r.headers.get('content-type') ?? '' };
}

/** Sends a multipart upload to `POST /resources/{folder}`. */
export async function upload(
  h: Hostile,
  folder: string,
  form: FormData,
  token = h.tokens.ResourceUploader,
): Promise<RawReply> {
  const { bytes, type } = await multipart(form);
  return raw(h.url, 'POST', `/resources/${folder}`, {
    headers: { authorization: `Bearer ${token}`, 'content-type': type },
    body: bytes,
  });
}

export interface Sealed {
  plain: Buffer;
  small: Buffer;
  big: Buffer;
  manifest: Manifest;
  dataKey: Buffer;
}

/** A random file sealed and split by core, in 4 KiB chunks so the big part has several. */
export async function sealRandom(size = 40_000): Promise<Sealed> {
  const dir = await tempDir('sluice-hostile-seal-');
  const src = join(dir, 'plain');
  const plain = randomBytes(size);
  const { writeFile, readFile, rm } = await import('node:fs/promises');
  try {
    await writeFile(src, plain);
    const r = await sealAndSplit(src, {
      paths: { small: `${src}.small`, big: `${src}.big` },
      smallSizeKB: 4,
      chunkSize: 4096,
    });
    return {
      plain,
      small: await readFile(r.smallPath),
      big: await readFile(r.bigPath),
      manifest: r.manifest,
      dataKey: r.key,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface UploadFields {
  name?: string;
  manifest?: unknown;
  dataKey?: string;
  small?: Buffer;
  big?: Buffer;
  cdnKey?: string;
}

export function fieldsOf(sealed: Sealed, name: string): UploadFields {
  return {
    name,
    manifest: sealed.manifest,
    dataKey: sealed.dataKey.toString('base64'),
    small: sealed.small,
    big: sealed.big,
  };
}

/** The form of an upload, parts in the documented order. */
export function formOf(f: UploadFields): FormData {
  const form = new FormData();
  if (f.name !== undefined) form.append('name', f.name);
  if (f.manifest !== undefined) {
    form.append(
      'manifest',
      typeof f.manifest === 'string' ? f.manifest : JSON.stringify(f.manifest),
    );
  }
  if (f.dataKey !== undefined) form.append('dataKey', f.dataKey);
  if (f.cdnKey !== undefined) form.append('cdnKey', f.cdnKey);
  if (f.small !== undefined) form.append('small', new Blob([f.small]), 'small.bin');
  if (f.big !== undefined) form.append('big', new Blob([f.big]), 'big.bin');
  return form;
}

/** Nothing stored and no temp file left: no resource in the store, no file under blobs/. */
export async function expectNothingStored(h: Hostile): Promise<void> {
  expect(await h.server.store.resources.names()).toEqual([]);
  expect(await filesUnder(join(h.dataDir, 'blobs'))).toEqual([]);
}

/** Every regular file below `dir` (relative paths), none when it does not exist. */
export async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}
