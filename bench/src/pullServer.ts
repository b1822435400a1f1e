// The embedded default for bench:pull (with options, the S3 setup of bench:pull --s3): the real
// resource API on loopback over a data directory inside the bench's temp dir, its first admin,
// and the API calls the bench makes around the timed work (users, tokens, deleting the previous
// push).
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createServer, initAdmin, type ServerOptions } from '@sluice/server';

export const ADMIN_EMAIL = 'admin@bench.invalid';

export interface PullServer {
  url: string;
  /** The password of every user the bench creates (random per run). */
  password: string;
  /** Creates a user through `POST /users` as the first admin. */
  createUser(email: string, role: string): Promise<void>;
  /** A fresh access token of `email` (`POST /login`). */
  accessToken(email: string): Promise<string>;
  /** Deletes every version of `folder/name` as the admin; false when there was none. */
  deleteResource(folder: string, name: string): Promise<boolean>;
  close(): Promise<void>;
}

/** `options` go to `createServer` as they are (e.g. S3 storage and CDN for bench:pull --s3). */
export async function startPullServer(
  dataDir: string,
  options: Omit<ServerOptions, 'dataDir'> = {},
): Promise<PullServer> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const password = randomBytes(18).toString('base64url');
  await initAdmin(dataDir, ADMIN_EMAIL, password);
  const server = await createServer({ ...options, dataDir });
  let url: string;
  try {
    url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  } catch (e) {
    await server.close();
    throw e;
  }

  const call = async (
    method: string,
    path: string,
    token: string | undefined,
    body?: unknown,
  ): Promise<Response> => {
    const headers: Record<string, string> = {};
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return fetch(`${url}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  };
  const accessToken = async (email: string): Promise<string> => {
    const res = await call('POST', '/login', undefined, { email, password });
    if (res.status !== 200) throw new Error(`login of ${email} answered ${res.status}`);
    return ((await res.json()) as { accessToken: string }).accessToken;
  };

  return {
    url,
    password,
    accessToken,
    async createUser(email, role) {
      const res = await call('POST', '/users', await accessToken(ADMIN_EMAIL), {
        email,
        password,
        role,
      });
      if (res.status !== 201) throw new Error(`creating ${email} answered ${res.status}`);
    },
    async deleteResource(folder, name) {
      const path = `/resources/${encodeURIComponent(folder)}/${encodeURIComponent(name)}`;
      const res = await call('DELETE', path, await accessToken(ADMIN_EMAIL));
      if (res.status === 404) return false;
      if (res.status !== 204) throw new Error(`deleting ${folder}/${name} answered ${res.status}`);
      return true;
    },
    close: () => server.close(),
  };
}

/** Where the API serves a version's big part (what `curl` fetches). */
export function bigPartPath(folder: string, name: string, version: number): string {
  return `/resources/${encodeURIComponent(folder)}/${encodeURIComponent(name)}/big?version=${version}`;
}
