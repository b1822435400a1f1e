// Hostile-input suite (docs/SECURITY.md): the parcel API (/api/v1, docs/API.md "Parcels") under
// replayed, cross-operation and cross-parcel tokens, forged signatures, borrowed public keys and
// lying uploads. Requests are built here with node:crypto the way a machine client builds them.
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { call, type Running, removeDir, startServer } from '../test-helpers.js';
import {
  expectError,
  expectHealthy,
  filesUnder,
  type Hostile,
  type RawReply,
  raw,
  startHostile,
} from './test-hostile.js';

let h: Hostile;
beforeAll(async () => {
  h = await startHostile();
});
afterAll(async () => {
  await h.close();
  await removeDir(h.dataDir);
});
afterEach(async () => {
  await expectHealthy(h);
});

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
/** The order of the P-256 group: s and n - s are both valid (high-S is accepted). */
const N = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');

interface Key {
  privateKey: KeyObject;
  publicKeyHex: string;
  address: string;
}

/** A P-256 key pair with its uncompressed point (hex) and address (docs/API.md). */
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

/** ECDSA P-256 over SHA-256 of the token, raw r ‖ s in hex. */
const signature = (key: Key, token: string) =>
  sign('sha256', Buffer.from(token), { key: key.privateKey, dsaEncoding: 'ieee-p1363' }).toString(
    'hex',
  );

async function tokenFor(
  user: string,
  operation: Record<string, unknown>,
  url = h.url,
): Promise<string> {
  const r = await call(url, 'POST', '/api/v1/auth', { json: { user, operation } });
  expect(r.status, r.text).toBe(200);
  return (r.body as { token: string }).token;
}

/** One signed request: `headers` override the three auth headers computed for `key`. */
function signed(
  method: string,
  path: string,
  key: Key,
  token: string,
  options: { body?: Buffer; headers?: Record<string, string>; url?: string } = {},
): Promise<RawReply> {
  return raw(options.url ?? h.url, method, path, {
    headers: {
      'x-auth-token': token,
      'x-public-key': key.publicKeyHex,
      'x-signature': signature(key, token),
      ...(options.body === undefined ? {} : { 'content-type': 'application/octet-stream' }),
      ...options.headers,
    },
    ...(options.body === undefined ? {} : { body: options.body }),
  });
}

async function put(key: Key, data: Buffer): Promise<string> {
  const token = await tokenFor(key.address, { name: 'upload', hash: sha(data) });
  const r = await signed('POST', '/api/v1/parcels', key, token, { body: data });
  expect(r.status, r.text).toBe(201);
  return (r.body as { id: string }).id;
}

const UNAUTHORIZED = { error: 'unauthorized', code: 'ERR_UNAUTHORIZED' };
const expect401 = (r: RawReply) => {
  expect(r.status).toBe(401);
  expect(r.body).toEqual(UNAUTHORIZED);
};

/** The parcel is still there, downloadable by its owner, with these bytes. */
async function expectIntact(owner: Key, id: string, data: Buffer): Promise<void> {
  const token = await tokenFor(owner.address, { name: 'download', id });
  const r = await signed('GET', `/api/v1/parcels/${id}`, owner, token);
  expect(r.status).toBe(200);
  // The cases' contents are ASCII, so the text of the answer is the bytes.
  expect(r.text).toBe(data.toString('utf8'));
}

const parcelCount = async () => (await filesUnder(join(h.dataDir, 'parcels', 'blobs'))).length;

describe('hostile parcel requests', () => {
  it('a replayed token is 401 after a success and after a failure it caused (one-time whatever the answer)', async () => {
    const alice = newKey();
    const data = Buffer.from('replayed parcel body');
    const token = await tokenFor(alice.address, { name: 'upload', hash: sha(data) });
    expect((await signed('POST', '/api/v1/parcels', alice, token, { body: data })).status).toBe(
      201,
    );
    expect401(await signed('POST', '/api/v1/parcels', alice, token, { body: data }));
    // A download token spent on a 404 is spent too.
    const ghost = 'a'.repeat(64);
    const dl = await tokenFor(alice.address, { name: 'download', id: ghost });
    expectError(await signed('GET', `/api/v1/parcels/${ghost}`, alice, dl), 404, 'ERR_NOT_FOUND');
    expect401(await signed('GET', `/api/v1/parcels/${ghost}`, alice, dl));
  });

  it('a token used once is refused after a server restart: consumed token ids are kept in the data directory', async () => {
    const first = await startServer();
    let second: Running | undefined;
    try {
      const alice = newKey();
      const data = Buffer.from('parcel across a restart');
      const url = first.url;
      const up = await tokenFor(alice.address, { name: 'upload', hash: sha(data) }, url);
      const stored = await signed('POST', '/api/v1/parcels', alice, up, { body: data, url });
      expect(stored.status).toBe(201);
      const id = (stored.body as { id: string }).id;
      const dl = await tokenFor(alice.address, { name: 'download', id }, url);
      expect((await signed('GET', `/api/v1/parcels/${id}`, alice, dl, { url })).status).toBe(200);
      await first.close();
      second = await startServer({ dataDir: first.dataDir });
      const again = { url: second.url };
      expect401(await signed('GET', `/api/v1/parcels/${id}`, alice, dl, again));
      expect401(await signed('POST', '/api/v1/parcels', alice, up, { body: data, ...again }));
      // A fresh token still works on the restarted server.
      const fresh = await tokenFor(alice.address, { name: 'download', id }, second.url);
      expect((await signed('GET', `/api/v1/parcels/${id}`, alice, fresh, again)).status).toBe(200);
    } finally {
      await (second ?? first).close();
      await removeDir(first.dataDir);
    }
  });

  it('ten concurrent uses of one remove token: exactly one 204, nine 401', async () => {
    const alice = newKey();
    const id = await put(alice, Buffer.from('raced parcel'));
    const token = await tokenFor(alice.address, { name: 'remove', id });
    const results = await Promise.all(
      Array.from({ length: 10 }, () => signed('DELETE', `/api/v1/parcels/${id}`, alice, token)),
    );
    expect(results.map((r) => r.status).sort()).toEqual([204, ...Array(9).fill(401)]);
  });

  it('cross-operation tokens: download→remove, remove→download, upload→download are 401 and the parcel stays', async () => {
    const alice = newKey();
    const data = Buffer.from('cross-operation parcel');
    const id = await put(alice, data);
    const download = await tokenFor(alice.address, { name: 'download', id });
    expect401(await signed('DELETE', `/api/v1/parcels/${id}`, alice, download));
    const remove = await tokenFor(alice.address, { name: 'remove', id });
    expect401(await signed('GET', `/api/v1/parcels/${id}`, alice, remove));
    const upload = await tokenFor(alice.address, { name: 'upload', hash: sha(data) });
    expect401(await signed('GET', `/api/v1/parcels/${id}`, alice, upload));
    const inspect = await tokenFor(alice.address, { name: 'inspect', id });
    expect401(await signed('DELETE', `/api/v1/parcels/${id}`, alice, inspect));
    await expectIntact(alice, id, data);
  });

  it('a token for parcel A on parcel B, or on A spelt in upper case, is refused', async () => {
    const alice = newKey();
    const a = await put(alice, Buffer.from('parcel A'));
    const bData = Buffer.from('parcel B');
    const b = await put(alice, bData);
    const forA = await tokenFor(alice.address, { name: 'remove', id: a });
    expect401(await signed('DELETE', `/api/v1/parcels/${b}`, alice, forA));
    const forA2 = await tokenFor(alice.address, { name: 'remove', id: a });
    expectError(
      await signed('DELETE', `/api/v1/parcels/${a.toUpperCase()}`, alice, forA2),
      400,
      'ERR_BAD_REQUEST',
    );
    await expectIntact(alice, b, bData);
  });

  it('forged signatures (another key, another token, bit flips, r or s zero, truncated, DER) are 401', async () => {
    const alice = newKey();
    const mallory = newKey();
    const data = Buffer.from('forged signature parcel');
    const id = await put(alice, data);
    const token = await tokenFor(alice.address, { name: 'remove', id });
    const other = await tokenFor(alice.address, { name: 'download', id });
    const good = signature(alice, token);
    const flipped = (i: number) => {
      const b = Buffer.from(good, 'hex');
      b[i] = (b[i] ?? 0) ^ 1;
      return b.toString('hex');
    };
    const der = sign('sha256', Buffer.from(token), alice.privateKey).toString('hex');
    for (const sig of [
      signature(mallory, token),
      signature(alice, other),
      signature(alice, `${token} `),
      flipped(0),
      flipped(63),
      `${'0'.repeat(64)}${good.slice(64)}`,
      `${good.slice(0, 64)}${'0'.repeat(64)}`,
      good.slice(0, 126),
      der,
      `${good.slice(64)}${good.slice(0, 64)}`,
    ]) {
      expect401(
        await signed('DELETE', `/api/v1/parcels/${id}`, alice, token, {
          headers: { 'x-signature': sig },
        }),
      );
    }
    // None of them spent the token: the genuine request still succeeds.
    expect((await signed('DELETE', `/api/v1/parcels/${id}`, alice, token)).status).toBe(204);
  });

  it('a malleated (high-S) signature of a spent token does not replay it', async () => {
    const alice = newKey();
    const id = await put(alice, Buffer.from('malleated parcel'));
    const token = await tokenFor(alice.address, { name: 'download', id });
    const sig = signature(alice, token);
    expect((await signed('GET', `/api/v1/parcels/${id}`, alice, token)).status).toBe(200);
    const s = BigInt(`0x${sig.slice(64)}`);
    const malleated = `${sig.slice(0, 64)}${(N - s).toString(16).padStart(64, '0')}`;
    expect401(
      await signed('GET', `/api/v1/parcels/${id}`, alice, token, {
        headers: { 'x-signature': malleated },
      }),
    );
  });

  it("another user's public key: Mallory's key with Alice's token, Alice's key with Mallory's signature, are 401", async () => {
    const alice = newKey();
    const mallory = newKey();
    const data = Buffer.from('borrowed key parcel');
    const id = await put(alice, data);
    const aliceToken = await tokenFor(alice.address, { name: 'remove', id });
    // Mallory signs Alice's token with her own key and presents her own public key.
    expect401(await signed('DELETE', `/api/v1/parcels/${id}`, mallory, aliceToken));
    // Mallory presents Alice's public key but can only sign with her own.
    expect401(
      await signed('DELETE', `/api/v1/parcels/${id}`, alice, aliceToken, {
        headers: { 'x-signature': signature(mallory, aliceToken) },
      }),
    );
    // A token Mallory asks for in Alice's name is useless without Alice's key.
    const inAlicesName = await tokenFor(alice.address, { name: 'remove', id });
    expect401(await signed('DELETE', `/api/v1/parcels/${id}`, mallory, inAlicesName));
    await expectIntact(alice, id, data);
  });

  it("a valid token of Mallory's own on Alice's parcel is 403: only the owner downloads or removes", async () => {
    const alice = newKey();
    const mallory = newKey();
    const data = Buffer.from('owned parcel');
    const id = await put(alice, data);
    for (const [method, name] of [
      ['GET', 'download'],
      ['DELETE', 'remove'],
    ] as const) {
      const token = await tokenFor(mallory.address, { name, id });
      expectError(
        await signed(method, `/api/v1/parcels/${id}`, mallory, token),
        403,
        'ERR_FORBIDDEN',
      );
    }
    await expectIntact(alice, id, data);
  });

  it('malformed public keys (compressed, off-curve, infinity, short, not hex, doubled header) are 401', async () => {
    const alice = newKey();
    const data = Buffer.from('bad key parcel');
    const id = await put(alice, data);
    const token = await tokenFor(alice.address, { name: 'download', id });
    const pk = alice.publicKeyHex;
    const offCurve = `${pk.slice(0, -2)}${((Number.parseInt(pk.slice(-2), 16) + 1) % 256).toString(16).padStart(2, '0')}`;
    for (const key of [
      `02${pk.slice(2, 66)}`,
      offCurve,
      `04${'0'.repeat(128)}`,
      pk.slice(0, 128),
      `04${'zz'.repeat(64)}`,
      `${pk}, ${pk}`,
      '',
    ]) {
      expect401(
        await signed('GET', `/api/v1/parcels/${id}`, alice, token, {
          headers: { 'x-public-key': key },
        }),
      );
    }
    await expectIntact(alice, id, data);
  });

  it('an upload whose content differs from the token hash (a byte changed, appended, truncated, empty) is 401 and stores nothing', async () => {
    const alice = newKey();
    const data = Buffer.from('the content the token was issued for');
    const before = await parcelCount();
    for (const body of [
      Buffer.concat([Buffer.from('T'), data.subarray(1)]),
      Buffer.concat([data, Buffer.from('!')]),
      data.subarray(0, -1),
      Buffer.alloc(0),
    ]) {
      const token = await tokenFor(alice.address, { name: 'upload', hash: sha(data) });
      expect401(await signed('POST', '/api/v1/parcels', alice, token, { body }));
    }
    expect(await parcelCount()).toBe(before);
  });

  it('hostile token requests (__proto__, extra operation fields, traversal ids, upper-case hex) are 400', async () => {
    const alice = newKey();
    const cases: unknown[] = [
      { user: alice.address, operation: { name: 'download', id: '../../parcels.json' } },
      { user: alice.address, operation: { name: 'download', id: 'A'.repeat(64) } },
      { user: alice.address, operation: { name: 'upload', hash: sha('x'), id: 'a'.repeat(64) } },
      { user: alice.address, operation: { name: '__proto__', id: 'a'.repeat(64) } },
      { user: alice.address.toUpperCase(), operation: { name: 'download', id: 'a'.repeat(64) } },
      { user: alice.address, operation: [{ name: 'download', id: 'a'.repeat(64) }] },
    ];
    for (const body of cases) {
      const r = await call(h.url, 'POST', '/api/v1/auth', { json: body });
      expectError(r, 400, 'ERR_BAD_REQUEST');
    }
    const proto = await raw(h.url, 'POST', '/api/v1/auth', {
      headers: { 'content-type': 'application/json' },
      body: `{"user":"${alice.address}","operation":{"name":"download","id":"${'a'.repeat(64)}"},"__proto__":{"op":"remove"}}`,
    });
    expectError(proto, 400, 'ERR_BAD_REQUEST');
  });

  it('an extra top-level field in a token request (role: admin) is 400 and issues no token', async () => {
    const alice = newKey();
    const r = await call(h.url, 'POST', '/api/v1/auth', {
      json: {
        user: alice.address,
        operation: { name: 'download', id: 'a'.repeat(64) },
        role: 'admin',
        op: 'remove',
      },
    });
    expectError(r, 400, 'ERR_BAD_REQUEST');
    expect(JSON.stringify(r.body)).not.toContain('token"');
  });

  // Finding F1 in docs/SECURITY.md (fixed; this guards it): the array is coerced into its one element.
  it('a token request with an array for user is 400', async () => {
    const alice = newKey();
    const r = await call(h.url, 'POST', '/api/v1/auth', {
      json: { user: [alice.address], operation: { name: 'download', id: 'a'.repeat(64) } },
    });
    expectError(r, 400, 'ERR_BAD_REQUEST');
  });

  it('traversal, encoded separators and look-alikes in the parcel id are 400 on every parcel route', async () => {
    const alice = newKey();
    const token = await tokenFor(alice.address, { name: 'download', id: 'a'.repeat(64) });
    for (const id of [
      '..%2F..%2Fparcels.json',
      '%2e%2e',
      `${'a'.repeat(62)}%00a`,
      `${'a'.repeat(63)}%EF%BC%8F`,
      'a'.repeat(65),
    ]) {
      for (const method of ['GET', 'DELETE']) {
        const r = await signed(method, `/api/v1/parcels/${id}`, alice, token);
        expectError(r, 400, 'ERR_BAD_REQUEST');
      }
      const inspect = await raw(h.url, 'GET', `/api/v1/parcels/${id}?key=owner`);
      expectError(inspect, 400, 'ERR_BAD_REQUEST');
    }
  });

  it('parcel tokens, signatures and contents never reach a log line (trace level)', async () => {
    const alice = newKey();
    const data = Buffer.from('secret parcel content 5f1e');
    const token = await tokenFor(alice.address, { name: 'upload', hash: sha(data) });
    expect((await signed('POST', '/api/v1/parcels', alice, token, { body: data })).status).toBe(
      201,
    );
    expect401(await signed('POST', '/api/v1/parcels', alice, token, { body: data }));
    const all = h.lines.join('\n');
    expect(all).not.toContain(token.split('.')[2]);
    expect(all).not.toContain(signature(alice, token).slice(0, 40));
    expect(all).not.toContain('secret parcel content');
  });
});
