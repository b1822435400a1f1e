import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type CryptoKey,
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  generateKeyPair,
  jwtVerify,
  SignJWT,
} from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addUser,
  call,
  login,
  ON_POSTGRES,
  type Running,
  removeDir,
  startServer,
} from '../test-helpers.js';
import { PARCELS_DIR } from './parcelStore.js';
import { PARCEL_AUTH_LIMITS, parcelId } from './service.js';

const UNAUTHORIZED = { error: 'unauthorized', code: 'ERR_UNAUTHORIZED' };
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

interface Key {
  privateKey: KeyObject;
  publicKeyHex: string;
  address: string;
}

function newKey(): Key {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([
    Buffer.from([4]),
    Buffer.from(jwk.x ?? '', 'base64url'),
    Buffer.from(jwk.y ?? '', 'base64url'),
  ]);
  return {
    privateKey,
    publicKeyHex: point.toString('hex'),
    address: createHash('sha256').update(point).digest().subarray(0, 20).toString('hex'),
  };
}

function signToken(key: Key, token: string): string {
  return sign('sha256', Buffer.from(token), {
    key: key.privateKey,
    dsaEncoding: 'ieee-p1363',
  }).toString('hex');
}

type Operation = { name: string; hash?: string; id?: string };

let s: Running;
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function start(options: Parameters<typeof startServer>[0] = {}): Promise<Running> {
  const r = await startServer(options);
  cleanups.push(async () => {
    await r.close();
    await removeDir(r.dataDir);
  });
  return r;
}

beforeAll(async () => {
  s = await start();
});

async function tokenFor(user: string, operation: Operation, url = s.url): Promise<string> {
  const r = await call(url, 'POST', '/api/v1/auth', { json: { user, operation } });
  if (r.status !== 200) throw new Error(`auth answered ${r.status}: ${r.text}`);
  return (r.body as { token: string }).token;
}

function authHeaders(key: Key, token: string): Record<string, string> {
  return {
    'x-auth-token': token,
    'x-public-key': key.publicKeyHex,
    'x-signature': signToken(key, token),
  };
}

async function send(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: Buffer,
  url = s.url,
): Promise<{ status: number; headers: Headers; bytes: Buffer; json: unknown }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers:
      body === undefined ? headers : { 'content-type': 'application/octet-stream', ...headers },
    body: body ?? null,
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, bytes, json };
}

async function upload(key: Key, data: Buffer, url = s.url) {
  const token = await tokenFor(key.address, { name: 'upload', hash: sha(data) }, url);
  return send('POST', '/api/v1/parcels', authHeaders(key, token), data, url);
}

async function download(key: Key, id: string, url = s.url) {
  const token = await tokenFor(key.address, { name: 'download', id }, url);
  return send('GET', `/api/v1/parcels/${id}`, authHeaders(key, token), undefined, url);
}

async function remove(key: Key, id: string, url = s.url) {
  const token = await tokenFor(key.address, { name: 'remove', id }, url);
  return send('DELETE', `/api/v1/parcels/${id}`, authHeaders(key, token), undefined, url);
}

/** A token signed with `signer` (the server's key unless given) with any claims and header. */
async function forge(
  claims: Record<string, unknown>,
  options: {
    header?: Record<string, unknown>;
    signer?: CryptoKey;
    iat?: number;
    exp?: number;
  } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const iat = options.iat ?? now;
  return new SignJWT({
    iss: 'sluice',
    aud: 'sluice-parcels',
    jti: crypto.randomUUID(),
    ...claims,
    iat,
    exp: options.exp ?? iat + 60,
  })
    .setProtectedHeader({
      alg: 'EdDSA',
      kid: s.server.keys.kid,
      typ: 'parcel+jwt',
      ...options.header,
    })
    .sign(options.signer ?? s.server.keys.privateKey);
}

describe('POST /api/v1/auth', () => {
  it('issues a one-operation EdDSA token for the user, valid 60 s, verifiable with the JWKS', async () => {
    const key = newKey();
    const hash = sha('payload');
    const token = await tokenFor(key.address, { name: 'upload', hash });
    expect(decodeProtectedHeader(token)).toEqual({
      alg: 'EdDSA',
      kid: s.server.keys.kid,
      typ: 'parcel+jwt',
    });
    const { payload } = await jwtVerify(token, createLocalJWKSet(s.server.keys.jwks), {
      issuer: 'sluice',
      audience: 'sluice-parcels',
    });
    expect(payload).toMatchObject({ sub: key.address, op: 'upload', hash });
    expect(payload.id).toBeUndefined();
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(60);
    expect(typeof payload.jti).toBe('string');
    const id = 'ab'.repeat(32);
    for (const name of ['download', 'remove', 'inspect']) {
      const t = decodeJwt(await tokenFor(key.address, { name, id }));
      expect(t).toMatchObject({ op: name, id, sub: key.address });
      expect(t.jti).not.toBe(payload.jti);
    }
  });

  it.each([
    ['an unknown operation', { name: 'list', id: 'ab'.repeat(32) }],
    ['upload without hash', { name: 'upload' }],
    ['upload with an id instead of a hash', { name: 'upload', id: 'ab'.repeat(32) }],
    ['an uppercase hash', { name: 'upload', hash: 'AB'.repeat(32) }],
    ['a short hash', { name: 'upload', hash: 'ab'.repeat(31) }],
    ['download without id', { name: 'download' }],
    [
      'download with an extra field',
      { name: 'download', id: 'ab'.repeat(32), hash: 'ab'.repeat(32) },
    ],
    ['a path as id', { name: 'remove', id: `${'../'.repeat(21)}a` }],
    ['a string operation', 'upload'],
    ['no name', { id: 'ab'.repeat(32) }],
  ])('answers 400 to %s', async (_what, operation) => {
    const r = await call(s.url, 'POST', '/api/v1/auth', {
      json: { user: newKey().address, operation },
    });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ code: 'ERR_BAD_REQUEST' });
  });

  it('answers 400 to a user that is not an address, and to malformed JSON; 413 to a big body', async () => {
    const operation = { name: 'upload', hash: sha('x') };
    for (const user of ['alice', 'AB'.repeat(20), 'ab'.repeat(21), 42]) {
      const r = await call(s.url, 'POST', '/api/v1/auth', { json: { user, operation } });
      expect(r.status).toBe(400);
    }
    const bad = await call(s.url, 'POST', '/api/v1/auth', {
      body: '{"user":',
      headers: { 'content-type': 'application/json' },
    });
    expect(bad.status).toBe(400);
    const big = await call(s.url, 'POST', '/api/v1/auth', {
      json: { user: newKey().address, operation, padding: 'x'.repeat(2000) },
    });
    expect(big.status).toBe(413);
  });
});

describe('parcels', () => {
  it('stores, inspects, returns and removes a parcel; removed is 410, unknown is 404', async () => {
    const key = newKey();
    const data = Buffer.from('a parcel of bytes\n'.repeat(1000));
    const put = await upload(key, data);
    expect(put.status).toBe(201);
    const id = parcelId(key.address, sha(data));
    expect(put.json).toEqual({ id });
    expect(id).toBe(
      sha(Buffer.concat([Buffer.from(key.address, 'hex'), Buffer.from(sha(data), 'hex')])),
    );

    const meta = await send('GET', `/api/v1/parcels/${id}?key=metadata`, {});
    expect(meta.status).toBe(200);
    expect(meta.json).toEqual({
      id,
      size: data.length,
      sha256: sha(data),
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    const owner = await send('GET', `/api/v1/parcels/${id}?key=owner`, {});
    expect(owner.json).toEqual({ owner: key.address });

    const got = await download(key, id);
    expect(got.status).toBe(200);
    expect(got.headers.get('content-length')).toBe(String(data.length));
    expect(got.headers.get('content-type')).toBe('application/octet-stream');
    expect(got.bytes.equals(data)).toBe(true);

    const again = await upload(key, data);
    expect(again.status).toBe(200);
    expect(again.json).toEqual({ id });

    const rm = await remove(key, id);
    expect(rm.status).toBe(204);
    const gone = { error: 'parcel removed', code: 'ERR_GONE' };
    expect(await download(key, id)).toMatchObject({ status: 410, json: gone });
    expect(await remove(key, id)).toMatchObject({ status: 410, json: gone });
    for (const k of ['metadata', 'owner']) {
      expect(await send('GET', `/api/v1/parcels/${id}?key=${k}`, {})).toMatchObject({
        status: 410,
      });
    }
    const unknown = 'cd'.repeat(32);
    expect(await download(key, unknown)).toMatchObject({ status: 404 });
    expect(await remove(key, unknown)).toMatchObject({ status: 404 });
    expect(await send('GET', `/api/v1/parcels/${unknown}?key=metadata`, {})).toMatchObject({
      status: 404,
    });
  });

  it('keeps one namespace per owner: the same content from two owners is two parcels', async () => {
    const a = newKey();
    const b = newKey();
    const data = Buffer.from('shared content');
    const pa = await upload(a, data);
    const pb = await upload(b, data);
    expect(pa.status).toBe(201);
    expect(pb.status).toBe(201);
    expect(pa.json).not.toEqual(pb.json);
    const idA = (pa.json as { id: string }).id;
    // B holds a valid token for A's parcel, but is not its owner.
    expect(await download(b, idA)).toMatchObject({ status: 403, json: { code: 'ERR_FORBIDDEN' } });
    expect(await remove(b, idA)).toMatchObject({ status: 403 });
    expect((await download(a, idA)).bytes.equals(data)).toBe(true);
  });

  it('stores an empty parcel', async () => {
    const key = newKey();
    const put = await upload(key, Buffer.alloc(0));
    expect(put.status).toBe(201);
    const got = await download(key, (put.json as { id: string }).id);
    expect(got.status).toBe(200);
    expect(got.bytes.length).toBe(0);
  });

  it('answers 400 to a malformed id or inspect key, 415 to an upload that is not octet-stream', async () => {
    const key = newKey();
    expect(await send('GET', '/api/v1/parcels/xyz?key=metadata', {})).toMatchObject({
      status: 400,
    });
    expect(await send('GET', `/api/v1/parcels/${'AB'.repeat(32)}?key=owner`, {})).toMatchObject({
      status: 400,
    });
    expect(await send('GET', `/api/v1/parcels/${'ab'.repeat(32)}?key=secret`, {})).toMatchObject({
      status: 400,
    });
    const data = Buffer.from('json?');
    const token = await tokenFor(key.address, { name: 'upload', hash: sha(data) });
    const r = await send(
      'POST',
      '/api/v1/parcels',
      {
        ...authHeaders(key, token),
        'content-type': 'text/plain',
      },
      data,
    );
    expect(r.status).toBe(415);
    const bare = await fetch(`${s.url}/api/v1/parcels`, {
      method: 'POST',
      headers: authHeaders(key, await tokenFor(key.address, { name: 'upload', hash: sha(data) })),
      body: data,
    });
    expect(bare.status).toBe(415);
  });
});

describe('every check fails alone with the same 401', () => {
  let owner: Key;
  let id: string;
  const data = Buffer.from('guarded parcel');
  beforeAll(async () => {
    owner = newKey();
    const put = await upload(owner, data);
    id = (put.json as { id: string }).id;
  });

  const expect401 = (r: { status: number; json: unknown }) => {
    expect(r.status).toBe(401);
    expect(r.json).toEqual(UNAUTHORIZED);
  };
  const downloadWith = (headers: Record<string, string>) =>
    send('GET', `/api/v1/parcels/${id}`, headers);

  it('a valid request passes (the baseline the other cases alter one thing of)', async () => {
    const token = await tokenFor(owner.address, { name: 'download', id });
    const r = await downloadWith(authHeaders(owner, token));
    expect(r.status).toBe(200);
  });

  it.each(['x-auth-token', 'x-public-key', 'x-signature'])('missing %s', async (header) => {
    const token = await tokenFor(owner.address, { name: 'download', id });
    const headers = authHeaders(owner, token);
    delete headers[header];
    expect401(await downloadWith(headers));
  });

  it('forged signature: random bytes, a signature of another token, a flipped bit', async () => {
    const token = await tokenFor(owner.address, { name: 'download', id });
    const good = authHeaders(owner, token);
    const other = await tokenFor(owner.address, { name: 'download', id });
    const sig = Buffer.from(good['x-signature'] ?? '', 'hex');
    sig[10] = (sig[10] ?? 0) ^ 1;
    for (const forged of [
      'ab'.repeat(64),
      signToken(owner, other),
      sig.toString('hex'),
      '00'.repeat(64),
      good['x-signature']?.slice(2) ?? '',
      `${good['x-signature']}00`,
    ]) {
      expect401(await downloadWith({ ...good, 'x-signature': forged }));
    }
    // Not consumed by the failures: the genuine request still works.
    expect((await downloadWith(good)).status).toBe(200);
  });

  it('a malformed or off-curve public key', async () => {
    const token = await tokenFor(owner.address, { name: 'download', id });
    const good = authHeaders(owner, token);
    const pk = good['x-public-key'] ?? '';
    const offCurve = `${pk.slice(0, 128)}${((Number.parseInt(pk.slice(128), 16) + 1) % 256).toString(16).padStart(2, '0')}`;
    for (const bad of [
      pk.slice(2),
      `02${pk.slice(2, 66)}`,
      `05${pk.slice(2)}`,
      offCurve,
      'zz'.repeat(65),
    ]) {
      expect401(await downloadWith({ ...good, 'x-public-key': bad }));
    }
  });

  it('the public key of another user (the signature is valid for it)', async () => {
    const mallory = newKey();
    // A token for the owner, signed by Mallory with her own key: sub is not her address.
    const token = await tokenFor(owner.address, { name: 'download', id });
    expect401(await downloadWith(authHeaders(mallory, token)));
    // Mallory's own key with the owner's signature: the signature fails.
    expect401(
      await downloadWith({ ...authHeaders(owner, token), 'x-public-key': mallory.publicKeyHex }),
    );
  });

  it('a token not signed by this server, with alg none, or with another typ or audience', async () => {
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const claims = { sub: owner.address, op: 'download', id };
    const payload = Buffer.from(
      JSON.stringify({
        ...claims,
        iss: 'sluice',
        aud: 'sluice-parcels',
        jti: 'x',
        iat: Math.floor(Date.now() / 1000),
        exp: Math.floor(Date.now() / 1000) + 60,
      }),
    ).toString('base64url');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'parcel+jwt' })).toString('base64url')}.${payload}.`;
    for (const token of [
      await forge(claims, { signer: privateKey }),
      none,
      await forge(claims, { header: { typ: 'at+jwt' } }),
      await forge({ ...claims, aud: 'sluice-api' }),
      await forge({ ...claims, iss: 'someone-else' }),
    ]) {
      expect401(await downloadWith(authHeaders(owner, token)));
    }
    // The same forge with nothing altered is accepted: the cases above fail for their one change.
    expect((await downloadWith(authHeaders(owner, await forge(claims)))).status).toBe(200);
  });

  it('an expired token, one issued in the future, one living longer than 60 s', async () => {
    const claims = { sub: owner.address, op: 'download', id };
    const now = Math.floor(Date.now() / 1000);
    for (const token of [
      await forge(claims, { iat: now - 120, exp: now - 60 }),
      await forge(claims, { iat: now - 61, exp: now + 5 }),
      await forge(claims, { iat: now + 120 }),
      await forge(claims, { iat: now, exp: now + 3600 }),
    ]) {
      expect401(await downloadWith(authHeaders(owner, token)));
    }
  });

  it('an access token as parcel token, and a parcel token as access token', async () => {
    await addUser(s, 'admin@example.test', 'ApiAdmin');
    const { accessToken } = await login(s.url, 'admin@example.test');
    expect401(await downloadWith(authHeaders(owner, accessToken)));
    const parcelToken = await tokenFor(owner.address, { name: 'download', id });
    const me = await call(s.url, 'GET', '/me', { token: parcelToken });
    expect(me.status).toBe(401);
    expect((await call(s.url, 'GET', '/me', { token: accessToken })).status).toBe(200);
  });

  it('a replayed token', async () => {
    const token = await tokenFor(owner.address, { name: 'download', id });
    const headers = authHeaders(owner, token);
    expect((await downloadWith(headers)).status).toBe(200);
    expect401(await downloadWith(headers));
    expect401(await downloadWith(authHeaders(owner, token)));
  });

  it('a token for another operation', async () => {
    const inspect = await tokenFor(owner.address, { name: 'inspect', id });
    expect401(await downloadWith(authHeaders(owner, inspect)));
    const get = await tokenFor(owner.address, { name: 'download', id });
    expect401(await send('DELETE', `/api/v1/parcels/${id}`, authHeaders(owner, get)));
    const rm = await tokenFor(owner.address, { name: 'remove', id });
    expect401(await downloadWith(authHeaders(owner, rm)));
    const up = await tokenFor(owner.address, { name: 'upload', hash: sha(data) });
    expect401(await downloadWith(authHeaders(owner, up)));
    expect((await download(owner, id)).status).toBe(200);
  });

  it('a token for parcel A used on parcel B', async () => {
    const other = Buffer.from('parcel B');
    const idB = ((await upload(owner, other)).json as { id: string }).id;
    const forA = await tokenFor(owner.address, { name: 'download', id });
    expect401(await send('GET', `/api/v1/parcels/${idB}`, authHeaders(owner, forA)));
    const rmA = await tokenFor(owner.address, { name: 'remove', id });
    expect401(await send('DELETE', `/api/v1/parcels/${idB}`, authHeaders(owner, rmA)));
    expect((await download(owner, idB)).bytes.equals(other)).toBe(true);
  });

  // Looks into the data directory's own files (blobs, database): the embedded backend's.
  it.skipIf(ON_POSTGRES)(
    'an upload whose content does not match the token hash: 401 and nothing stored',
    async () => {
      const key = newKey();
      const announced = Buffer.from('what the token names');
      const sent = Buffer.from('what is actually sent');
      const token = await tokenFor(key.address, { name: 'upload', hash: sha(announced) });
      expect401(await send('POST', '/api/v1/parcels', authHeaders(key, token), sent));
      for (const body of [announced, sent]) {
        const id = parcelId(key.address, sha(body));
        expect((await send('GET', `/api/v1/parcels/${id}?key=metadata`, {})).status).toBe(404);
      }
      const blobs = join(s.dataDir, PARCELS_DIR, 'blobs');
      const live = [...(await s.server.store.parcels.referencedBlobIds())];
      expect((await readdir(blobs)).filter((n) => n !== '.tmp').sort()).toEqual(live.sort());
      expect(await readdir(join(blobs, '.tmp'))).toEqual([]);
    },
  );

  it('two concurrent uses of one token: exactly one succeeds', async () => {
    for (const method of ['GET', 'GET', 'GET'] as const) {
      const token = await tokenFor(owner.address, { name: 'download', id });
      const headers = authHeaders(owner, token);
      const results = await Promise.all([
        send(method, `/api/v1/parcels/${id}`, headers),
        send(method, `/api/v1/parcels/${id}`, headers),
        send(method, `/api/v1/parcels/${id}`, headers),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual([200, 401, 401]);
    }
    const key = newKey();
    const body = Buffer.from('raced upload');
    const token = await tokenFor(key.address, { name: 'upload', hash: sha(body) });
    const headers = authHeaders(key, token);
    const puts = await Promise.all([
      send('POST', '/api/v1/parcels', headers, body),
      send('POST', '/api/v1/parcels', headers, body),
    ]);
    expect(puts.map((r) => r.status).sort()).toEqual([201, 401]);
    const { id: raced } = (puts.find((r) => r.status === 201)?.json ?? {}) as { id: string };
    const rm = await tokenFor(key.address, { name: 'remove', id: raced });
    const rmHeaders = authHeaders(key, rm);
    const deletes = await Promise.all([
      send('DELETE', `/api/v1/parcels/${raced}`, rmHeaders),
      send('DELETE', `/api/v1/parcels/${raced}`, rmHeaders),
    ]);
    expect(deletes.map((r) => r.status).sort()).toEqual([204, 401]);
  });
});

describe('limits and persistence', () => {
  // Looks into the data directory's own files (blobs, database): the embedded backend's.
  it.skipIf(ON_POSTGRES)(
    'refuses a parcel over bigPartLimit with 413 and keeps nothing',
    async () => {
      const small = await start({ bigPartLimit: 1000 });
      const key = newKey();
      const big = Buffer.alloc(5000, 7);
      const r = await upload(key, big, small.url);
      expect(r.status).toBe(413);
      const ok = await upload(key, Buffer.alloc(1000, 7), small.url);
      expect(ok.status).toBe(201);
      const blobs = join(small.dataDir, PARCELS_DIR, 'blobs');
      expect((await readdir(blobs)).filter((n) => n !== '.tmp')).toHaveLength(1);
      expect(await readdir(join(blobs, '.tmp'))).toEqual([]);
    },
  );

  it('rate limits token requests per address and per user with 429 and Retry-After', async () => {
    const limited = await start();
    const operation = { name: 'upload', hash: sha('x') };
    const user = newKey().address;
    for (let i = 0; i < PARCEL_AUTH_LIMITS.perUser.limit; i++) {
      await tokenFor(user, operation, limited.url);
    }
    const perUser = await call(limited.url, 'POST', '/api/v1/auth', { json: { user, operation } });
    expect(perUser.status).toBe(429);
    expect(perUser.headers.get('retry-after')).toMatch(/^\d+$/);
    let last = 0;
    for (let i = 0; i < PARCEL_AUTH_LIMITS.perAddress.limit; i++) {
      last = (
        await call(limited.url, 'POST', '/api/v1/auth', {
          json: { user: newKey().address, operation },
        })
      ).status;
    }
    expect(last).toBe(429);
  });

  it('keeps parcels and tombstones across a restart (the blob sweep leaves them alone)', async () => {
    const first = await startServer();
    const key = newKey();
    const kept = Buffer.from('kept across restarts');
    const dropped = Buffer.from('removed before the restart');
    const keptId = ((await upload(key, kept, first.url)).json as { id: string }).id;
    const droppedId = ((await upload(key, dropped, first.url)).json as { id: string }).id;
    expect((await remove(key, droppedId, first.url)).status).toBe(204);
    await first.close();
    const second = await start({ dataDir: first.dataDir });
    expect((await download(key, keptId, second.url)).bytes.equals(kept)).toBe(true);
    expect((await download(key, droppedId, second.url)).status).toBe(410);
  });

  it('logs no token, signature or content', async () => {
    const lines: string[] = [];
    const logged = await start({
      logger: { level: 'trace', stream: { write: (l: string) => lines.push(l) } },
    });
    const key = newKey();
    const data = Buffer.from('secret parcel content');
    const token = await tokenFor(key.address, { name: 'upload', hash: sha(data) }, logged.url);
    const headers = authHeaders(key, token);
    expect((await send('POST', '/api/v1/parcels', headers, data, logged.url)).status).toBe(201);
    expect((await send('POST', '/api/v1/parcels', headers, data, logged.url)).status).toBe(401);
    const log = lines.join('');
    expect(log).toContain('parcel.refused');
    for (const secret of [
      token,
      token.split('.')[2] ?? '',
      headers['x-signature'] ?? '',
      'secret parcel content',
    ]) {
      expect(log).not.toContain(secret);
    }
  });
});
