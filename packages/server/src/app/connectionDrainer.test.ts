import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { type Manifest, sealAndSplit } from '@sluice/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addUser,
  call,
  login,
  type Running,
  removeDir,
  runCleanup,
  startServer,
  tempDir,
} from '../test-helpers.js';

const MiB = 1024 * 1024;
const EMAIL = 'uploader@example.test';

interface Sealed {
  small: Buffer;
  big: Buffer;
  manifest: Manifest;
  dataKey: Buffer;
}

const cleanup: (() => Promise<void>)[] = [];
afterAll(() => runCleanup(cleanup));

let work: string;
let sealed: Sealed;
beforeAll(async () => {
  work = await tempDir('sluice-shutdown-');
  cleanup.push(() => removeDir(work));
  // Larger than what loopback socket buffers absorb, so a paused reader keeps the response open.
  const src = join(work, 'plain');
  await writeFile(src, randomBytes(24 * MiB));
  const r = await sealAndSplit(src, {
    paths: { small: `${src}.small`, big: `${src}.big` },
    smallSizeKB: 16,
    chunkSize: MiB,
  });
  sealed = {
    small: await readFile(r.smallPath),
    big: await readFile(r.bigPath),
    manifest: r.manifest,
    dataKey: r.key,
  };
});

function uploadForm(name: string): FormData {
  const form = new FormData();
  form.append('name', name);
  form.append('manifest', JSON.stringify(sealed.manifest));
  form.append('dataKey', sealed.dataKey.toString('base64'));
  form.append('small', new Blob([sealed.small]), 'small');
  form.append('big', new Blob([sealed.big]), 'big');
  return form;
}

/** A server with one uploader and one uploaded resource (`models/m.bin`). */
async function serverWithResource(
  options: { shutdownGraceMs?: number; dataDir?: string } = {},
): Promise<{ s: Running; token: string }> {
  const s = await startServer(options);
  cleanup.push(async () => {
    await s.close();
    await removeDir(s.dataDir);
  });
  if (options.dataDir === undefined) {
    await addUser(s, EMAIL, 'ResourceUploader');
    const token = (await login(s.url, EMAIL)).accessToken;
    const up = await fetch(`${s.url}/resources/models`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: uploadForm('m.bin'),
    });
    expect(up.status).toBe(201);
    return { s, token };
  }
  return { s, token: (await login(s.url, EMAIL)).accessToken };
}

/** GET of the big part whose body is not read until the caller says so. */
function pausedDownload(
  s: Running,
  token: string,
): Promise<{ res: IncomingMessage; first: Buffer }> {
  const url = new URL(s.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        path: '/resources/models/m.bin/big',
        headers: { authorization: `Bearer ${token}` },
        agent: false,
      },
      (res) => {
        res.once('data', (first: Buffer) => {
          res.pause();
          resolve({ res, first });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Reads the rest of a paused response; rejects when the server cuts it short. */
function readRest(res: IncomingMessage, first: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks = [first];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('response aborted')));
    res.resume();
  });
}

/** Whether `p` is still pending after `ms`. */
async function pendingAfter(p: Promise<unknown>, ms: number): Promise<boolean> {
  const marker = Symbol('pending');
  const winner = await Promise.race([
    p.then(
      () => 'settled',
      () => 'settled',
    ),
    new Promise((r) => setTimeout(() => r(marker), ms)),
  ]);
  return winner === marker;
}

async function timed(p: Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await p;
  return performance.now() - t0;
}

describe('close()', () => {
  it('lets a download in flight finish with the full body, and accepts no new connection', async () => {
    const { s, token } = await serverWithResource();
    const { res, first } = await pausedDownload(s, token);
    expect(res.statusCode).toBe(200);
    const closing = s.close();
    expect(await pendingAfter(closing, 300)).toBe(true);
    await expect(fetch(`${s.url}/me`)).rejects.toThrow();
    const body = await readRest(res, first);
    expect(body.length).toBe(sealed.big.length);
    expect(body.equals(sealed.big)).toBe(true);
    expect(await timed(closing)).toBeLessThan(2000);
  });

  it('is not delayed by a download the client aborted', async () => {
    const { s, token } = await serverWithResource();
    const abort = new AbortController();
    const res = await fetch(`${s.url}/resources/models/m.bin/big`, {
      headers: { authorization: `Bearer ${token}` },
      signal: abort.signal,
    });
    const reader = res.body?.getReader();
    await reader?.read();
    abort.abort();
    await new Promise((r) => setTimeout(r, 100));
    expect(await timed(s.close())).toBeLessThan(2000);
  });

  it('is not delayed by an idle keep-alive connection', async () => {
    const { s, token } = await serverWithResource();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanup.push(async () => agent.destroy());
    const url = new URL(s.url);
    const status = await new Promise<number | undefined>((resolve, reject) => {
      httpRequest(
        {
          host: url.hostname,
          port: url.port,
          path: '/me',
          agent,
          headers: { authorization: `Bearer ${token}` },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode));
        },
      )
        .on('error', reject)
        .end();
    });
    expect(status).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    const idle = Object.values(agent.freeSockets).flat();
    expect(idle).toHaveLength(1);
    const socketClosed = new Promise((r) => idle[0]?.once('close', r));
    expect(await timed(s.close())).toBeLessThan(2000);
    await socketClosed;
  });

  it('cuts off a stalled download after shutdownGraceMs', async () => {
    const { s, token } = await serverWithResource({ shutdownGraceMs: 300 });
    const { res, first } = await pausedDownload(s, token);
    const closing = s.close();
    expect(await timed(closing)).toBeLessThan(2000);
    await expect(readRest(res, first)).rejects.toThrow();
  });

  it('lets an upload in flight finish; the version is kept across a restart', async () => {
    const { s, token } = await serverWithResource();
    const r = new Response(uploadForm('second.bin'));
    const body = Buffer.from(await r.arrayBuffer());
    const url = new URL(s.url);
    let sent!: () => void;
    const answer = new Promise<{ status?: number; text: string }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: url.hostname,
          port: url.port,
          method: 'POST',
          path: '/resources/models',
          agent: false,
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': r.headers.get('content-type') ?? '',
            'content-length': body.length,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }),
          );
        },
      );
      req.on('error', reject);
      const half = Math.floor(body.length / 2);
      req.write(body.subarray(0, half));
      sent = () => req.end(body.subarray(half));
    });
    await new Promise((r) => setTimeout(r, 200));
    const closing = s.close();
    expect(await pendingAfter(closing, 200)).toBe(true);
    sent();
    const done = await answer;
    expect(done).toEqual({
      status: 201,
      text: JSON.stringify({ folder: 'models', name: 'second.bin', version: 1 }),
    });
    await closing;

    const again = await serverWithResource({ dataDir: s.dataDir });
    const list = await call(again.s.url, 'GET', '/resources/models', { token: again.token });
    expect(list.body).toMatchObject({
      resources: [{ name: 'm.bin' }, { name: 'second.bin', bigSize: sealed.manifest.bigSize }],
    });
    const big = await fetch(`${again.s.url}/resources/models/second.bin/big`, {
      headers: { authorization: `Bearer ${again.token}` },
    });
    expect(Buffer.from(await big.arrayBuffer()).equals(sealed.big)).toBe(true);
  });
});
