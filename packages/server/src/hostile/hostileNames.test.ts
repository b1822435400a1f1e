// Hostile-input suite (docs/SECURITY.md): hostile folder and resource names in every route that
// takes one, and hostile emails and ids in the user routes.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { call, PASSWORD, removeDir, resourceNames } from '../test-helpers.js';
import {
  expectError,
  expectHealthy,
  fieldsOf,
  filesUnder,
  formOf,
  type Hostile,
  type RawReply,
  raw,
  sealRandom,
  startHostile,
  upload,
} from './test-hostile.js';

let h: Hostile;
let stored: { resources: string[]; files: string[] };
const HW = 'c3'.repeat(32);

beforeAll(async () => {
  h = await startHostile();
  const sealed = await sealRandom();
  const r = await upload(h, 'models', formOf(fieldsOf(sealed, 'm.bin')));
  expect(r.status).toBe(201);
  stored = await snapshot();
});
afterAll(async () => {
  await h.close();
  await removeDir(h.dataDir);
});
afterEach(async () => {
  await expectHealthy(h);
  // No case stored, removed or left anything.
  expect(await snapshot()).toEqual(stored);
});

async function snapshot() {
  return {
    resources: await resourceNames(h),
    files: await filesUnder(h.dataDir).then((f) => f.filter((p) => !p.endsWith('.lock'))),
  };
}

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

/**
 * Sends `bad` as the folder and as the name in each of the five resource routes: `encoded` goes
 * into the URL path as written, `decoded` into JSON bodies and multipart fields.
 */
async function everyNameRoute(encoded: string, decoded: string): Promise<[string, RawReply][]> {
  const t = h.tokens.ResourceUploader;
  const json = (body: unknown) => ({
    headers: { ...auth(t), 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const envelopeBody = { password: PASSWORD, hardware: HW };
  const sealed = await sealRandom(20_000);
  const out: [string, RawReply][] = [];
  const add = async (what: string, r: Promise<RawReply>) => out.push([what, await r]);
  await add('list folder', raw(h.url, 'GET', `/resources/${encoded}`, { headers: auth(t) }));
  await add(
    'envelope folder',
    raw(h.url, 'POST', `/resources/get/${encoded}`, json({ fileName: 'm.bin', ...envelopeBody })),
  );
  await add(
    'envelope name',
    raw(h.url, 'POST', '/resources/get/models', json({ fileName: decoded, ...envelopeBody })),
  );
  await add('upload folder', upload(h, encoded, formOf(fieldsOf(sealed, 'n.bin'))));
  await add('upload name', upload(h, 'models', formOf(fieldsOf(sealed, decoded))));
  await add(
    'delete folder',
    raw(h.url, 'DELETE', `/resources/${encoded}/m.bin`, { headers: auth(t) }),
  );
  await add(
    'delete name',
    raw(h.url, 'DELETE', `/resources/models/${encoded}`, { headers: auth(t) }),
  );
  await add(
    'big folder',
    raw(h.url, 'GET', `/resources/${encoded}/m.bin/big`, { headers: auth(t) }),
  );
  await add(
    'big name',
    raw(h.url, 'GET', `/resources/models/${encoded}/big`, { headers: auth(t) }),
  );
  return out;
}

/** Every route answered 400 ERR_BAD_REQUEST (listed by route on failure). */
async function expectRefusedEverywhere(encoded: string, decoded: string): Promise<void> {
  const replies = await everyNameRoute(encoded, decoded);
  const seen = replies.map(([what, r]) => `${what}: ${r.status} ${codeOf(r)}`);
  expect(seen).toEqual(replies.map(([what]) => `${what}: 400 ERR_BAD_REQUEST`));
}

function codeOf(r: RawReply): unknown {
  return (r.body as { code?: unknown } | undefined)?.code;
}

describe('hostile names in every resource route', () => {
  it('a good name is served by every route (control: the refusals below mean something)', async () => {
    const t = h.tokens.ResourceUploader;
    expect((await raw(h.url, 'GET', '/resources/models', { headers: auth(t) })).status).toBe(200);
    expect(
      (await raw(h.url, 'GET', '/resources/models/m.bin/big', { headers: auth(t) })).status,
    ).toBe(200);
    const r = await call(h.url, 'POST', '/resources/get/models', {
      token: h.tokens.Operator,
      json: { fileName: 'm.bin', password: PASSWORD, hardware: HW },
    });
    expect(r.status).toBe(200);
  });

  it('dot segments .. and . (plain and %2e-encoded) are 400 everywhere', async () => {
    await expectRefusedEverywhere('..', '..');
    await expectRefusedEverywhere('%2e%2e', '..');
    await expectRefusedEverywhere('%2E.', '..');
    await expectRefusedEverywhere('.', '.');
  });

  it('encoded separators %2F and %5C (traversal to metadata.json) are 400 everywhere', async () => {
    await expectRefusedEverywhere('..%2F..%2Fmetadata.json', '../../metadata.json');
    await expectRefusedEverywhere('..%5C..%5Cmetadata.json', '..\\..\\metadata.json');
    await expectRefusedEverywhere('a%2Fb', 'a/b');
  });

  it('absolute paths are 400 everywhere', async () => {
    await expectRefusedEverywhere('%2Fetc%2Fpasswd', '/etc/passwd');
    await expectRefusedEverywhere('C%3A%5CWindows', 'C:\\Windows');
  });

  it('NUL, CR/LF and other control characters are 400 everywhere', async () => {
    await expectRefusedEverywhere('a%00b', 'a\u0000b');
    await expectRefusedEverywhere('a%0D%0ASet-Cookie%3A%20x', 'a\r\nSet-Cookie: x');
    await expectRefusedEverywhere('a%1B%5B2J', 'a\u001b[2J');
  });

  it('unicode look-alikes (fullwidth solidus, one- and two-dot leaders, fullwidth letters) are 400 everywhere', async () => {
    await expectRefusedEverywhere('a%EF%BC%8Fb', 'a\uff0fb');
    await expectRefusedEverywhere('%E2%80%A4%E2%80%A4', '\u2024\u2024');
    await expectRefusedEverywhere('%E2%80%A5', '\u2025');
    await expectRefusedEverywhere('%EF%BD%8Dodels', '\uff4dodels');
    await expectRefusedEverywhere('m%E2%80%AEnib.exe', 'm\u202enib.exe');
  });

  it('double-encoded dots and separators are 400 everywhere', async () => {
    await expectRefusedEverywhere('%252e%252e', '%2e%2e');
    await expectRefusedEverywhere('%252e%252e%252fmetadata.json', '%2e%2e%2fmetadata.json');
  });

  it('names of 129 characters and more in JSON bodies and multipart fields are 400', async () => {
    const sealed = await sealRandom(20_000);
    for (const long of ['a'.repeat(129), 'a'.repeat(1000)]) {
      const envelope = await call(h.url, 'POST', '/resources/get/models', {
        token: h.tokens.Operator,
        json: { fileName: long, password: PASSWORD, hardware: HW },
      });
      expectError(envelope, 400, 'ERR_BAD_REQUEST');
      expectError(
        await upload(h, 'models', formOf(fieldsOf(sealed, long))),
        400,
        'ERR_BAD_REQUEST',
      );
    }
  });

  // Finding F4 in docs/SECURITY.md (fixed; this guards it): the router refuses path parameters over 100 characters with
  // its own 414 body before the API's name check runs.
  it('names of 129 characters and more in the URL path are 400 in the API error shape', async () => {
    await expectRefusedEverywhere('a'.repeat(129), 'a'.repeat(129));
  });

  // Finding F4 in docs/SECURITY.md (fixed; this guards it): a resource named with 101 to 128 characters can be uploaded
  // (the name travels in a multipart field) but no path route reaches it.
  it('a 128-character folder or name (the documented maximum) reaches every path route', async () => {
    const t = h.tokens.ResourceUploader;
    const n = 'n'.repeat(128);
    const list = await raw(h.url, 'GET', `/resources/${n}`, { headers: auth(t) });
    expect(list.status).toBe(200);
    for (const [method, path] of [
      ['DELETE', `/resources/models/${n}`],
      ['GET', `/resources/models/${n}/big`],
      ['GET', `/resources/${n}/m.bin/big`],
    ] as const) {
      expectError(await raw(h.url, method, path, { headers: auth(t) }), 404, 'ERR_NOT_FOUND');
    }
  });

  it('names starting with a dot, dash or underscore are 400 everywhere', async () => {
    await expectRefusedEverywhere('.hidden', '.hidden');
    await expectRefusedEverywhere('-rf', '-rf');
    await expectRefusedEverywhere('__proto__', '__proto__');
  });

  it('an unencoded traversal in the path matches no route (404), even where it would reach metadata.json', async () => {
    const t = h.tokens.ResourceUploader;
    for (const path of [
      '/resources/../metadata.json',
      '/resources/models/../../metadata.json/big',
      '/resources//etc/passwd',
    ]) {
      const r = await raw(h.url, 'GET', path, { headers: auth(t) });
      expectError(r, 404, 'ERR_NOT_FOUND');
      expect(r.text).not.toContain('passwordHash');
    }
  });

  it('names of object internals (constructor, prototype, toString) are ordinary unknown resources', async () => {
    const t = h.tokens.ResourceUploader;
    const list = await raw(h.url, 'GET', '/resources/constructor', { headers: auth(t) });
    expect(list.status).toBe(200);
    expect(list.body).toEqual({ folder: 'constructor', resources: [] });
    for (const [method, path] of [
      ['DELETE', '/resources/constructor/prototype'],
      ['GET', '/resources/models/toString/big'],
      ['GET', '/resources/hasOwnProperty/valueOf/big'],
    ] as const) {
      expectError(await raw(h.url, method, path, { headers: auth(t) }), 404, 'ERR_NOT_FOUND');
    }
    const r = await call(h.url, 'POST', '/resources/get/constructor', {
      token: t,
      json: { fileName: 'prototype', password: PASSWORD, hardware: HW },
    });
    expectError(r, 404, 'ERR_NOT_FOUND');
  });

  it('a hostile version query on the big-part route is 400', async () => {
    const t = h.tokens.ResourceUploader;
    for (const q of ['__proto__', '-1', '0', '1e3', '1.5', '99999999999', '1%00', '%2e%2e']) {
      const r = await raw(h.url, 'GET', `/resources/models/m.bin/big?version=${q}`, {
        headers: auth(t),
      });
      expectError(r, 400, 'ERR_BAD_REQUEST');
    }
  });
});

describe('hostile emails and ids in the user routes', () => {
  const createUser = (email: string) =>
    call(h.url, 'POST', '/users', {
      token: h.tokens.ApiAdmin,
      json: { email, password: PASSWORD, role: 'Operator' },
    });

  it('an email without a single ASCII @, with spaces or over 254 characters is 400', async () => {
    for (const email of [
      'no-at-sign',
      'two@@example.test',
      'full\uff20width.test',
      'a b@example.test',
      'line\nbreak@example.test',
      `${'a'.repeat(250)}@example.test`,
      `${'a'.repeat(60_000)}@x.test`,
    ]) {
      expectError(await createUser(email), 400, 'ERR_BAD_REQUEST');
    }
  });

  // Finding F3 in docs/SECURITY.md (fixed; this guards it): the email pattern admits NUL and escape characters.
  it('an email with NUL or terminal escape characters is 400', async () => {
    expectError(await createUser('nul\u0000@example.test'), 400, 'ERR_BAD_REQUEST');
    expectError(await createUser('esc\u001b[2J@example.test'), 400, 'ERR_BAD_REQUEST');
  });

  it('a look-alike of an existing email (Cyrillic, fullwidth) is another account: login is 401', async () => {
    for (const email of [
      h.emails.ApiAdmin.replace('a', '\u0430'),
      h.emails.ApiAdmin.replace('a', '\uff41'),
      `${h.emails.ApiAdmin}\u0000`,
    ]) {
      const r = await call(h.url, 'POST', '/login', { json: { email, password: PASSWORD } });
      expectError(r, 401, 'ERR_UNAUTHORIZED');
    }
  });

  it('user ids of object internals, traversals or over 64 characters are 404 or 400', async () => {
    const t = h.tokens.ApiAdmin;
    for (const id of ['__proto__', 'constructor', 'toString', '..%2F..%2Fmetadata.json', '%00']) {
      for (const action of ['disable', 'enable', 'reset-device']) {
        const r = await raw(h.url, 'POST', `/users/${id}/${action}`, { headers: auth(t) });
        expectError(r, 404, 'ERR_NOT_FOUND');
      }
    }
    const long = await raw(h.url, 'POST', `/users/${'a'.repeat(65)}/disable`, { headers: auth(t) });
    expectError(long, 400, 'ERR_BAD_REQUEST');
    const role = await call(h.url, 'POST', '/users/__proto__/role', {
      token: t,
      json: { role: 'ApiAdmin' },
    });
    expectError(role, 404, 'ERR_NOT_FOUND');
    expect(({} as Record<string, unknown>).role).toBeUndefined();
  });

  it('a role that is not one of the five is 400 (no __proto__, no case games)', async () => {
    for (const role of ['__proto__', 'apiadmin', 'ApiAdmin ', 'Root', '']) {
      const r = await call(h.url, 'POST', `/users/${h.ids.Validator}/role`, {
        token: h.tokens.ApiAdmin,
        json: { role },
      });
      expectError(r, 400, 'ERR_BAD_REQUEST');
    }
    expect((await h.server.store.users.get(h.ids.Validator))?.role).toBe('Validator');
  });
});
