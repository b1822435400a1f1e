import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import {
  deriveEnvelopeKey,
  envelopeAad,
  isSluiceError,
  type Manifest,
  openBuffer,
  openEnvelope,
  sealAndSplit,
} from '@sluice/core';
import type { Role } from '@sluice/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addUser,
  call,
  login,
  ON_POSTGRES,
  PASSWORD,
  type Running,
  removeDir,
  resourceNames,
  startServer,
  tempDir,
} from '../test-helpers.js';

/** High enough that no case here trips a login or password limit. */
const LIMITS = {
  perClient: { limit: 100_000, lockSeconds: 1, maxLockSeconds: 1, forgetSeconds: 60 },
  perAddress: { limit: 100_000, windowSeconds: 60 },
  perAccount: { limit: 100_000, windowSeconds: 60 },
  withToken: { limit: 100_000, lockSeconds: 1, maxLockSeconds: 1, forgetSeconds: 60 },
};
const HW_A = 'a1'.repeat(32);
const HW_B = 'b2'.repeat(32);

interface Sealed {
  plain: Buffer;
  small: Buffer;
  big: Buffer;
  manifest: Manifest;
  dataKey: Buffer;
}

/** A random file sealed and split by core, in 4 KiB chunks so the big part has several. */
async function sealRandom(dir: string, size = 150_000): Promise<Sealed> {
  const src = join(dir, `plain-${randomBytes(4).toString('hex')}`);
  const plain = randomBytes(size);
  await writeFile(src, plain);
  const r = await sealAndSplit(src, {
    paths: { small: `${src}.small`, big: `${src}.big` },
    smallSizeKB: 16,
    chunkSize: 4096,
  });
  return {
    plain,
    small: await readFile(r.smallPath),
    big: await readFile(r.bigPath),
    manifest: r.manifest,
    dataKey: r.key,
  };
}

interface UploadFields {
  cdnKey?: string;
  name?: string;
  manifest?: unknown;
  dataKey?: string;
  small?: Buffer;
  big?: Buffer;
}

function fieldsOf(sealed: Sealed, name: string): UploadFields {
  return {
    name,
    manifest: sealed.manifest,
    dataKey: sealed.dataKey.toString('base64'),
    small: sealed.small,
    big: sealed.big,
  };
}

let s: Running;
let work: string;
const tokens = {} as Record<Role, string>;
const ids = {} as Record<Role, string>;
const emails = {} as Record<Role, string>;
let sealed: Sealed;

/**
 * One request with the path sent exactly as written: fetch would resolve `%2e%2e` and `.`
 * segments before they reach the server.
 */
function raw(
  method: string,
  path: string,
  token: string,
  body?: { bytes: Buffer; type: string },
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const url = new URL(s.url);
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body ? { 'content-type': body.type, 'content-length': body.bytes.length } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            body: text === '' ? undefined : JSON.parse(text),
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body?.bytes);
  });
}

async function encode(body: FormData | unknown): Promise<{ bytes: Buffer; type: string }> {
  if (body instanceof FormData) {
    const r = new Response(body);
    return {
      bytes: Buffer.from(await r.arrayBuffer()),
      type: r.headers.get('content-type') ?? '',
    };
  }
  return { bytes: Buffer.from(JSON.stringify(body)), type: 'application/json' };
}

function formOf(f: UploadFields): FormData {
  const form = new FormData();
  if (f.name !== undefined) form.append('name', f.name);
  if (f.manifest !== undefined) form.append('manifest', JSON.stringify(f.manifest));
  if (f.dataKey !== undefined) form.append('dataKey', f.dataKey);
  if (f.cdnKey !== undefined) form.append('cdnKey', f.cdnKey);
  if (f.small !== undefined) form.append('small', new Blob([f.small]), 'small');
  if (f.big !== undefined) form.append('big', new Blob([f.big]), 'big');
  return form;
}

async function upload(token: string, folder: string, f: UploadFields) {
  const form = formOf(f);
  const res = await fetch(`${s.url}/resources/${folder}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    body: form,
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

function getEnvelope(
  role: Role,
  folder: string,
  fileName: string,
  hardware = HW_A,
  password = PASSWORD,
) {
  return call(s.url, 'POST', `/resources/get/${folder}`, {
    token: tokens[role],
    json: { fileName, password, hardware },
  });
}

async function openReply(role: Role, body: unknown, hardware = HW_A) {
  const b = body as { resource: { folder: string; name: string; version: number } };
  const key = await deriveEnvelopeKey(emails[role], PASSWORD, hardware);
  return openEnvelope(key, body, envelopeAad(b.resource));
}

/** Resets the binding of `role`'s user, which ends its sessions: it logs in again. */
async function resetDevice(role: Role) {
  const r = await call(s.url, 'POST', `/users/${ids[role]}/reset-device`, { token: tokens.Admin });
  expect(r.status).toBe(200);
  tokens[role] = (await login(s.url, emails[role])).accessToken;
}

/** Every file under the data directory's blob store (committed and temp). */
async function blobFiles(): Promise<string[]> {
  const dir = join(s.dataDir, 'blobs');
  return [
    ...(await readdir(dir)).filter((n) => n !== '.tmp'),
    ...(await readdir(join(dir, '.tmp'))).map((n) => `.tmp/${n}`),
  ];
}

async function startOn(dataDir?: string) {
  s = await startServer({ loginLimits: LIMITS, ...(dataDir ? { dataDir } : {}) });
  for (const role of Object.keys(emails) as Role[]) {
    tokens[role] = (await login(s.url, emails[role])).accessToken;
  }
}

beforeAll(async () => {
  work = await tempDir('sluice-resources-');
  sealed = await sealRandom(work);
  s = await startServer({ loginLimits: LIMITS });
  for (const role of ['ApiAdmin', 'Admin', 'ResourceUploader', 'Validator', 'Operator'] as Role[]) {
    emails[role] = `${role.toLowerCase()}@example.test`;
    ids[role] = (await addUser(s, emails[role], role)).id;
    tokens[role] = (await login(s.url, emails[role])).accessToken;
  }
});
afterAll(async () => {
  await s.close();
  await removeDir(s.dataDir);
  await removeDir(work);
});

describe('upload and device envelope', () => {
  it('uploads, then a device gets an envelope that reassembles the original plaintext', async () => {
    expect(sealed.manifest.chunks.length).toBeGreaterThan(3);
    const up = await upload(tokens.ResourceUploader, 'models', fieldsOf(sealed, 'detector.onnx'));
    expect(up).toEqual({
      status: 201,
      body: { folder: 'models', name: 'detector.onnx', version: 1 },
    });

    const r = await getEnvelope('Operator', 'models', 'detector.onnx');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      v: 1,
      kdf: { alg: 'scrypt' },
      resource: { folder: 'models', name: 'detector.onnx', version: 1 },
    });
    const payload = await openReply('Operator', r.body);
    expect(payload.manifest).toEqual(sealed.manifest);
    expect(payload.dataKey).toEqual(sealed.dataKey);
    expect(payload.small).toEqual(sealed.small);

    const big = await fetch(`${s.url}/resources/models/detector.onnx/big`, {
      headers: { authorization: `Bearer ${tokens.Operator}` },
    });
    expect(big.status).toBe(200);
    const bigBytes = Buffer.from(await big.arrayBuffer());
    expect(bigBytes).toEqual(sealed.big);
    const plain = openBuffer(Buffer.concat([payload.small, bigBytes]), payload.dataKey);
    expect(plain.equals(sealed.plain)).toBe(true);
  });

  it('every upload is a new version; the envelope and the list give the latest', async () => {
    const second = await sealRandom(work, 90_000);
    const up = await upload(tokens.Admin, 'models', fieldsOf(second, 'detector.onnx'));
    expect(up.body).toEqual({ folder: 'models', name: 'detector.onnx', version: 2 });
    const payload = await openReply(
      'Operator',
      (await getEnvelope('Operator', 'models', 'detector.onnx')).body,
    );
    expect(payload.resource.version).toBe(2);
    expect(payload.dataKey).toEqual(second.dataKey);
    const list = await call(s.url, 'GET', '/resources/models', { token: tokens.Validator });
    expect(list.status).toBe(200);
    expect(list.body).toMatchObject({
      folder: 'models',
      resources: [
        {
          name: 'detector.onnx',
          version: 2,
          versions: 2,
          blobSize: second.manifest.blobSize,
          smallSize: second.manifest.smallSize,
          bigSize: second.manifest.bigSize,
        },
      ],
    });
    // The older version's big part stays reachable by number.
    const v1 = await fetch(`${s.url}/resources/models/detector.onnx/big?version=1`, {
      headers: { authorization: `Bearer ${tokens.Operator}` },
    });
    expect(Buffer.from(await v1.arrayBuffer())).toEqual(sealed.big);
  });

  it('a wrong password is 401 and binds nothing; an unknown resource is 404', async () => {
    const r = await getEnvelope('Validator', 'models', 'detector.onnx', HW_A, `${PASSWORD}x`);
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ code: 'ERR_UNAUTHORIZED' });
    expect((await s.server.store.users.get(ids.Validator))?.boundHardwareHash).toBeNull();
    const missing = await getEnvelope('Validator', 'models', 'nothing.bin');
    expect(missing.status).toBe(404);
    expect((await s.server.store.users.get(ids.Validator))?.boundHardwareHash).toBeNull();
  });

  it('a second device is refused with 403 until an admin resets the binding', async () => {
    expect((await getEnvelope('Validator', 'models', 'detector.onnx', HW_A)).status).toBe(200);
    const refused = await getEnvelope('Validator', 'models', 'detector.onnx', HW_B);
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({
      code: 'ERR_DEVICE_NOT_BOUND',
      error:
        'this account is bound to another device; ask an admin to reset the device binding (POST /users/:id/reset-device)',
    });
    expect((await getEnvelope('Validator', 'models', 'detector.onnx', HW_A)).status).toBe(200);
    await resetDevice('Validator');
    const moved = await getEnvelope('Validator', 'models', 'detector.onnx', HW_B);
    expect(moved.status).toBe(200);
    await openReply('Validator', moved.body, HW_B);
    // An envelope for device B cannot be opened with device A's key.
    let caught: unknown;
    try {
      await openReply('Validator', moved.body, HW_A);
    } catch (e) {
      caught = e;
    }
    expect(isSluiceError(caught, 'ERR_BAD_ENVELOPE')).toBe(true);
    expect((await getEnvelope('Validator', 'models', 'detector.onnx', HW_A)).status).toBe(403);
  });

  // Looks into the data directory's own files (blobs, database): the embedded backend's.
  it.skipIf(ON_POSTGRES)(
    'the server restarted between upload and download still serves (master key persisted)',
    async () => {
      const dataDir = s.dataDir;
      await s.close();
      // A blob stored by an upload that crashed before it was recorded.
      const orphan = join(dataDir, 'blobs', 'f'.repeat(32));
      await writeFile(orphan, 'left by a crash');
      await startOn(dataDir);
      expect(await blobFiles()).not.toContain('f'.repeat(32));
      const r = await getEnvelope('Operator', 'models', 'detector.onnx');
      expect(r.status).toBe(200);
      expect((await openReply('Operator', r.body)).resource.version).toBe(2);
    },
  );

  // Looks into the data directory's own files (blobs, database): the embedded backend's.
  it.skipIf(ON_POSTGRES)(
    'keeps no data key in plaintext anywhere in the data directory',
    async () => {
      const key = sealed.dataKey;
      const needles = [
        key,
        Buffer.from(key.toString('hex')),
        Buffer.from(key.toString('base64')),
        Buffer.from(key.toString('base64url')),
      ];
      const walk = async (dir: string): Promise<string[]> => {
        const out: string[] = [];
        for (const e of await readdir(dir, { withFileTypes: true })) {
          const p = join(dir, e.name);
          if (e.isDirectory()) out.push(...(await walk(p)));
          else out.push(p);
        }
        return out;
      };
      const files = await walk(s.dataDir);
      expect(files.length).toBeGreaterThan(3);
      for (const f of files) {
        const content = await readFile(f);
        for (const n of needles) expect(content.includes(n), f).toBe(false);
      }
      // The metadata does hold the wrapped key for that version.
      expect(
        (await s.server.store.resources.get('models', 'detector.onnx'))?.versions[0]
          ?.wrappedDataKey,
      ).toMatch(/^v1\./);
    },
  );
});

describe('names, sizes and integrity', () => {
  const badFolders = ['%2e%2e', '.', 'a%2Fb', '%2Fetc', 'a%00b', 'mod%D0%B5ls', '-x', 'a%5Cb'];
  const badNames = [
    '..',
    '.',
    '/etc/passwd',
    'a/b',
    'a\\b',
    'a\u0000b',
    'm\u043edel',
    '.hidden',
    'a b',
    '',
  ];

  it('refuses bad folders and names with 400 before storing anything', async () => {
    const before = await blobFiles();
    for (const folder of badFolders) {
      const form = await encode(formOf(fieldsOf(sealed, 'ok.bin')));
      const up = await raw('POST', `/resources/${folder}`, tokens.ResourceUploader, form);
      expect(up.status, folder).toBe(400);
      expect(up.body).toMatchObject({ code: 'ERR_BAD_REQUEST' });
      const envelopeRequest = await encode({
        fileName: 'detector.onnx',
        password: PASSWORD,
        hardware: HW_A,
      });
      for (const [method, path] of [
        ['POST', `/resources/get/${folder}`],
        ['GET', `/resources/${folder}`],
        ['DELETE', `/resources/${folder}/ok.bin`],
        ['DELETE', `/resources/models/${folder}`],
        ['GET', `/resources/models/${folder}/big`],
      ] as const) {
        const r = await raw(
          method,
          path,
          tokens.ApiAdmin,
          method === 'POST' ? envelopeRequest : undefined,
        );
        expect(r.status, `${method} ${path}`).toBe(400);
        expect(r.body).toMatchObject({ code: 'ERR_BAD_REQUEST' });
      }
    }
    for (const name of badNames) {
      const up = await upload(tokens.ResourceUploader, 'models', fieldsOf(sealed, name));
      expect(up.status, JSON.stringify(name)).toBe(400);
      const get = await getEnvelope('Operator', 'models', name);
      expect(get.status, JSON.stringify(name)).toBe(400);
    }
    expect(await blobFiles()).toEqual(before);
    expect(await resourceNames(s)).toEqual(['models/detector.onnx']);
  });

  it('an oversized small part is 413 with nothing stored and no temp file left', async () => {
    const before = await blobFiles();
    const up = await upload(tokens.ResourceUploader, 'models', {
      ...fieldsOf(sealed, 'huge.bin'),
      small: Buffer.alloc(16 * 1024 * 1024 + 1),
    });
    expect(up.status).toBe(413);
    expect(up.body).toMatchObject({ code: 'ERR_TOO_LARGE' });
    expect(await blobFiles()).toEqual(before);
    expect(await s.server.store.resources.get('models', 'huge.bin')).toBeUndefined();
  });

  it('a big part over the configured limit is 413', async () => {
    const dir = await tempDir();
    const small = await startServer({ loginLimits: LIMITS, bigPartLimit: 1000 });
    try {
      await addUser(small, 'up@example.test', 'ResourceUploader');
      const token = (await login(small.url, 'up@example.test')).accessToken;
      const form = new FormData();
      form.append('name', 'x.bin');
      form.append('manifest', JSON.stringify(sealed.manifest));
      form.append('dataKey', sealed.dataKey.toString('base64'));
      form.append('small', new Blob([sealed.small]));
      form.append('big', new Blob([sealed.big]));
      const res = await fetch(`${small.url}/resources/models`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: form,
      });
      expect(res.status).toBe(413);
      expect(await readdir(join(small.dataDir, 'blobs', '.tmp'))).toEqual([]);
      expect(await small.server.store.resources.get('models', 'x.bin')).toBeUndefined();
    } finally {
      await small.close();
      await removeDir(small.dataDir);
      await removeDir(dir);
    }
  });

  it('a big part that does not match the manifest is 400 with nothing stored', async () => {
    const before = await blobFiles();
    const flipped = Buffer.from(sealed.big);
    flipped[5000] = (flipped[5000] ?? 0) ^ 1;
    const cases: UploadFields[] = [
      { ...fieldsOf(sealed, 'bad.bin'), big: flipped },
      { ...fieldsOf(sealed, 'bad.bin'), big: sealed.big.subarray(0, sealed.big.length - 16) },
      { ...fieldsOf(sealed, 'bad.bin'), small: sealed.small.subarray(1) },
      { ...fieldsOf(sealed, 'bad.bin'), manifest: { ...sealed.manifest, chunkSize: 15 } },
      { ...fieldsOf(sealed, 'bad.bin'), dataKey: randomBytes(16).toString('base64') },
      { ...fieldsOf(sealed, 'bad.bin'), manifest: undefined },
      { ...fieldsOf(sealed, 'bad.bin'), small: undefined },
      { ...fieldsOf(sealed, 'bad.bin'), big: undefined },
    ];
    for (const [i, c] of cases.entries()) {
      const up = await upload(tokens.ResourceUploader, 'models', c);
      expect(up.status, `case ${i}`).toBe(400);
      expect(up.body).toMatchObject({ code: 'ERR_BAD_REQUEST' });
    }
    expect(await blobFiles()).toEqual(before);
    expect(await s.server.store.resources.get('models', 'bad.bin')).toBeUndefined();
  });
});

describe('roles', () => {
  it('only uploaders and admins upload and delete; every role lists and downloads', async () => {
    for (const role of ['Validator', 'Operator'] as Role[]) {
      expect((await upload(tokens[role], 'roles', fieldsOf(sealed, 'r.bin'))).status).toBe(403);
      const del = await call(s.url, 'DELETE', '/resources/models/detector.onnx', {
        token: tokens[role],
      });
      expect(del.status).toBe(403);
    }
    for (const role of ['ApiAdmin', 'Admin', 'ResourceUploader'] as Role[]) {
      expect((await upload(tokens[role], 'roles', fieldsOf(sealed, `${role}.bin`))).status).toBe(
        201,
      );
    }
    for (const role of Object.keys(tokens) as Role[]) {
      expect((await call(s.url, 'GET', '/resources/roles', { token: tokens[role] })).status).toBe(
        200,
      );
      const big = await call(s.url, 'GET', '/resources/roles/Admin.bin/big', {
        token: tokens[role],
      });
      expect(big.status).toBe(200);
      const hardware = (await s.server.store.users.get(ids[role]))?.boundHardwareHash ?? HW_A;
      const envelope = await getEnvelope(role, 'roles', 'Admin.bin', hardware);
      expect(envelope.status, role).toBe(200);
      expect((await openReply(role, envelope.body, hardware)).small).toEqual(sealed.small);
    }
    expect((await call(s.url, 'GET', '/resources/roles')).status).toBe(401);
    expect((await call(s.url, 'GET', '/resources/roles/Admin.bin/big')).status).toBe(401);
    const anonymous = await call(s.url, 'POST', '/resources/get/roles', {
      json: { fileName: 'Admin.bin', password: PASSWORD, hardware: HW_A },
    });
    expect(anonymous.status).toBe(401);
    expect((await call(s.url, 'DELETE', '/resources/roles/Admin.bin')).status).toBe(401);
    expect((await upload('not-a-token', 'roles', fieldsOf(sealed, 'x.bin'))).status).toBe(401);
    expect(await resourceNames(s)).toEqual([
      'models/detector.onnx',
      'roles/Admin.bin',
      'roles/ApiAdmin.bin',
      'roles/ResourceUploader.bin',
    ]);
  });
});

describe('GET /resources/{folder}/{name}/big', () => {
  const get = (headers: Record<string, string> = {}, query = '') =>
    fetch(`${s.url}/resources/models/detector.onnx/big${query}`, {
      headers: { authorization: `Bearer ${tokens.Operator}`, ...headers },
    });
  let big: Buffer;
  beforeAll(async () => {
    big = Buffer.from(await (await get()).arrayBuffer());
  });

  it('serves single ranges: first bytes, middle, suffix, open-ended', async () => {
    const size = big.length;
    for (const [header, start, end] of [
      ['bytes=0-99', 0, 99],
      ['bytes=1000-5000', 1000, 5000],
      ['bytes=-100', size - 100, size - 1],
      [`bytes=${size - 10}-`, size - 10, size - 1],
      [`bytes=10-${size + 100}`, 10, size - 1],
    ] as const) {
      const r = await get({ range: header });
      expect(r.status, header).toBe(206);
      expect(r.headers.get('content-range')).toBe(`bytes ${start}-${end}/${size}`);
      expect(r.headers.get('content-length')).toBe(String(end - start + 1));
      expect(Buffer.from(await r.arrayBuffer())).toEqual(big.subarray(start, end + 1));
    }
  });

  it('answers 416 for unsatisfiable ranges', async () => {
    for (const header of [`bytes=${big.length}-`, 'bytes=-0']) {
      const r = await get({ range: header });
      expect(r.status, header).toBe(416);
      expect(r.headers.get('content-range')).toBe(`bytes */${big.length}`);
      expect(await r.json()).toMatchObject({ code: 'ERR_RANGE_NOT_SATISFIABLE' });
    }
  });

  it('has a strong ETag; If-None-Match gives 304; a new version has another ETag', async () => {
    const r = await get();
    const etag = r.headers.get('etag') ?? '';
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect(r.headers.get('accept-ranges')).toBe('bytes');
    const again = await get({ 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect((await again.arrayBuffer()).byteLength).toBe(0);
    expect((await get({ 'if-none-match': '"other"' })).status).toBe(200);
    const v1 = await get({}, '?version=1');
    expect(v1.headers.get('etag')).not.toBe(etag);
    expect((await get({}, '?version=9')).status).toBe(404);
    expect((await get({}, '?version=x')).status).toBe(400);
    // A range against an outdated If-Range gets the whole part.
    const stale = await get({ range: 'bytes=0-9', 'if-range': '"stale"' });
    expect(stale.status).toBe(200);
    expect(Buffer.from(await stale.arrayBuffer())).toEqual(big);
  });
});

describe('DELETE /resources/{folder}/{name}', () => {
  // Looks into the data directory's own files (blobs, database): the embedded backend's.
  it.skipIf(ON_POSTGRES)('removes every version and its blobs: 204, then 404', async () => {
    const record = await s.server.store.resources.get('models', 'detector.onnx');
    const blobIds = (record?.versions ?? []).flatMap((v) => [v.smallBlobId, v.bigBlobId ?? '']);
    expect(blobIds).toHaveLength(4);
    const files = await blobFiles();
    for (const id of blobIds) expect(files).toContain(id);

    const del = await call(s.url, 'DELETE', '/resources/models/detector.onnx', {
      token: tokens.ResourceUploader,
    });
    expect(del.status).toBe(204);
    const after = await blobFiles();
    for (const id of blobIds) expect(after).not.toContain(id);
    expect(
      (await call(s.url, 'DELETE', '/resources/models/detector.onnx', { token: tokens.Admin }))
        .status,
    ).toBe(404);
    expect((await getEnvelope('Operator', 'models', 'detector.onnx')).status).toBe(404);
    const big = await call(s.url, 'GET', '/resources/models/detector.onnx/big', {
      token: tokens.Operator,
    });
    expect(big.status).toBe(404);
    const list = await call(s.url, 'GET', '/resources/models', { token: tokens.Operator });
    expect(list.body).toEqual({ folder: 'models', resources: [] });
  });
});

describe('big part on the CDN only', () => {
  it('accepts a cdnKey instead of the big part; the envelope works, the big route is 404', async () => {
    const up = await upload(tokens.Admin, 'cdn', {
      ...fieldsOf(sealed, 'remote.bin'),
      big: undefined,
      cdnKey: 'models/remote.bin/v1.big',
    });
    expect(up.status).toBe(201);
    const version = (await s.server.store.resources.get('cdn', 'remote.bin'))?.versions[0];
    expect(version).toMatchObject({ bigBlobId: null, cdnKey: 'models/remote.bin/v1.big' });
    const list = await call(s.url, 'GET', '/resources/cdn', { token: tokens.Operator });
    expect(list.body).toMatchObject({ resources: [{ name: 'remote.bin', bigStored: false }] });
    const payload = await openReply(
      'Operator',
      (await getEnvelope('Operator', 'cdn', 'remote.bin')).body,
    );
    expect(payload.small).toEqual(sealed.small);
    const big = await call(s.url, 'GET', '/resources/cdn/remote.bin/big', {
      token: tokens.Operator,
    });
    expect(big.status).toBe(404);
    for (const cdnKey of ['../escape', 'a/../b', '/abs', 'a b', '']) {
      const bad = await upload(tokens.Admin, 'cdn', {
        ...fieldsOf(sealed, 'bad-cdn.bin'),
        big: undefined,
        cdnKey,
      });
      expect(bad.status, cdnKey).toBe(400);
    }
  });
});

describe('concurrency, media types and logs', () => {
  it('concurrent uploads of one name get distinct consecutive versions', async () => {
    const replies = await Promise.all(
      [1, 2, 3, 4].map(() => upload(tokens.Admin, 'extra', fieldsOf(sealed, 'same.bin'))),
    );
    expect(replies.map((r) => r.status)).toEqual([201, 201, 201, 201]);
    expect(replies.map((r) => r.body.version).sort()).toEqual([1, 2, 3, 4]);
    expect((await s.server.store.resources.get('extra', 'same.bin'))?.versions).toHaveLength(4);
  });

  it('two devices racing for a fresh account: one is bound, the other refused', async () => {
    await addUser(s, 'race@example.test', 'Operator');
    const token = (await login(s.url, 'race@example.test')).accessToken;
    const replies = await Promise.all(
      [HW_A, HW_B].map((hardware) =>
        call(s.url, 'POST', '/resources/get/extra', {
          token,
          json: { fileName: 'same.bin', password: PASSWORD, hardware },
        }),
      ),
    );
    expect(replies.map((r) => r.status).sort()).toEqual([200, 403]);
  });

  it('wrong envelope passwords count against the (user, address) pair; busy correct clients are not limited', async () => {
    const limited = await startServer({
      loginLimits: {
        perAddress: { limit: 5, windowSeconds: 60 },
        withToken: { limit: 3, lockSeconds: 60, maxLockSeconds: 60, forgetSeconds: 60 },
      },
    });
    try {
      await addUser(limited, 'busy@example.test', 'ResourceUploader');
      const token = (await login(limited.url, 'busy@example.test')).accessToken;
      const previous = s;
      s = limited;
      try {
        expect((await upload(token, 'busy', fieldsOf(sealed, 'b.bin'))).status).toBe(201);
      } finally {
        s = previous;
      }
      const get = (password: string) =>
        call(limited.url, 'POST', '/resources/get/busy', {
          token,
          json: { fileName: 'b.bin', password, hardware: HW_A },
        });
      for (let i = 0; i < 8; i++) expect((await get(PASSWORD)).status).toBe(200);
      for (let i = 0; i < 3; i++) expect((await get(`${PASSWORD}-guess${i}`)).status).toBe(401);
      const blocked = await get(PASSWORD);
      expect(blocked.status).toBe(429);
      expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await limited.close();
      await removeDir(limited.dataDir);
    }
  });

  it('an upload that is not multipart is 415; a bad hardware hash is 400', async () => {
    const r = await call(s.url, 'POST', '/resources/extra', {
      token: tokens.Admin,
      json: { name: 'x.bin' },
    });
    expect(r.status).toBe(415);
    const hw = await call(s.url, 'POST', '/resources/get/extra', {
      token: tokens.Admin,
      json: { fileName: 'same.bin', password: PASSWORD, hardware: 'has space' },
    });
    expect(hw.status).toBe(400);
  });

  it('logs the events without passwords, data keys or hardware hashes', async () => {
    const lines: string[] = [];
    const logged = await startServer({
      loginLimits: LIMITS,
      logger: { level: 'info', stream: { write: (line: string) => lines.push(line) } },
    });
    const previous = s;
    try {
      await addUser(logged, 'logged@example.test', 'ResourceUploader');
      const token = (await login(logged.url, 'logged@example.test')).accessToken;
      s = logged;
      expect((await upload(token, 'logs', fieldsOf(sealed, 'l.bin'))).status).toBe(201);
      for (const password of [PASSWORD, `${PASSWORD}-wrong`]) {
        await call(logged.url, 'POST', '/resources/get/logs', {
          token,
          json: { fileName: 'l.bin', password, hardware: HW_A },
        });
      }
      const text = lines.join('');
      expect(text).toContain('resource.uploaded');
      expect(text).toContain('envelope.issued');
      expect(text).toContain('envelope.badPassword');
      for (const secret of [
        PASSWORD,
        HW_A,
        sealed.dataKey.toString('base64'),
        sealed.dataKey.toString('hex'),
      ]) {
        expect(text).not.toContain(secret);
      }
    } finally {
      s = previous;
      await logged.close();
      await removeDir(logged.dataDir);
    }
  });
});
