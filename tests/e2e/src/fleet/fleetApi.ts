// Plain HTTP calls to one instance, for the tests that must say which instance a request goes to
// and read the exact answer (a Session would renew a refused token and hide it).
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { push, Session, type TokenResponse, type UserResponse } from '@sluice/core';
import { ADMIN_EMAIL, onCleanup, PASSWORD, removeDir, tempDir } from '../apiServer.js';

/** Status, JSON body (when there is one) and headers of an answer. */
export interface Answer<T = Record<string, unknown>> {
  status: number;
  body: T & { code?: string };
  headers: Headers;
}

/** A request to `url` + `path` with an optional bearer token and JSON body. */
export async function call<T = Record<string, unknown>>(
  url: string,
  method: string,
  path: string,
  options: { token?: string; json?: unknown } = {},
): Promise<Answer<T>> {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.json !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${url}${path}`, {
    method,
    headers,
    body: options.json === undefined ? undefined : JSON.stringify(options.json),
  });
  const text = await res.text();
  return {
    status: res.status,
    body: text === '' ? ({} as T) : JSON.parse(text),
    headers: res.headers,
  };
}

/** `POST /login` on `url`; throws unless it answers 200. */
export async function loginAt(url: string, email: string): Promise<TokenResponse> {
  const res = await call<TokenResponse>(url, 'POST', '/login', {
    json: { email, password: PASSWORD },
  });
  if (res.status !== 200) throw new Error(`login of ${email} at ${url}: ${res.status}`);
  return res.body;
}

/** Creates `email` (PASSWORD) with `role` through `POST /users` on `url`; resolves with its id. */
export async function addUser(url: string, email: string, role: string): Promise<string> {
  const admin = await loginAt(url, ADMIN_EMAIL);
  const res = await call<UserResponse>(url, 'POST', '/users', {
    token: admin.accessToken,
    json: { email, password: PASSWORD, role },
  });
  if (res.status !== 201) throw new Error(`creating ${email} at ${url}: ${res.status}`);
  return res.body.user.id;
}

/** `POST /resources/get/models` for m.bin from the device with hardware hash `hardware`. */
export function envelopeAt(url: string, token: string, hardware: string): Promise<Answer> {
  return call(url, 'POST', '/resources/get/models', {
    token,
    json: { fileName: 'm.bin', password: PASSWORD, hardware },
  });
}

/** `size` random bytes pushed as models/m.bin by `uploader` (PASSWORD) through `url`. */
export async function pushModel(
  url: string,
  uploader: string,
  size: number,
  chunkSize?: number,
): Promise<Buffer> {
  const work = await tempDir('sluice-fleet-push-');
  onCleanup(() => removeDir(work));
  const plain = randomBytes(size);
  await writeFile(join(work, 'm.bin'), plain);
  const session = new Session({ apiUrl: url });
  session.setCredentials(uploader, PASSWORD);
  await session.login();
  await push(session, 'models', 'm.bin', join(work, 'm.bin'), { chunkSize });
  return plain;
}
