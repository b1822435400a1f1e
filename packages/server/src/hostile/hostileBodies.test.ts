// Hostile-input suite (docs/SECURITY.md): malformed and wrongly-typed JSON, oversized headers
// and bodies, and HTTP framing attacks against the real server on loopback.
import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { call, login, PASSWORD, removeDir } from '../test-helpers.js';
import { expectError, expectHealthy, type Hostile, raw, startHostile } from './test-hostile.js';

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

const SECRET = 'hostile secret password 0451';

/** POSTs `body` as-is with a JSON content type (and the admin's token). */
function postJson(path: string, body: string, token = h.tokens.ApiAdmin) {
  return raw(h.url, 'POST', path, {
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body,
  });
}

/** Writes `bytes` on a fresh socket and returns what comes back until the server closes. */
function socketExchange(bytes: string, endAfterWrite = true): Promise<string> {
  const u = new URL(h.url);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(Number(u.port), u.hostname, () => {
      socket.write(bytes);
      if (endAfterWrite) socket.end();
      else setTimeout(() => socket.destroy(), 100);
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', reject);
  });
}

describe('hostile JSON bodies', () => {
  it('malformed JSON is 400 and the answer does not quote the body', async () => {
    for (const body of [
      `{"email":"admin@example.test","password":"${SECRET}"`,
      `{"email":"admin@example.test","password":'${SECRET}'}`,
      `{email: "x", password: "${SECRET}"}`,
    ]) {
      const r = await postJson('/login', body);
      expectError(r, 400, 'ERR_BAD_REQUEST');
      expect(r.text).not.toContain(SECRET);
    }
  });

  it('a body that is not an object (array, string, number, 30 000 levels deep) is 400', async () => {
    for (const body of ['[]', '"x"', '42', 'null', `${'['.repeat(30_000)}${']'.repeat(30_000)}`]) {
      expectError(await postJson('/login', body), 400, 'ERR_BAD_REQUEST');
    }
  });

  it('an object where a string belongs is 400 on every JSON route', async () => {
    const bad = { wrong: 'shape' };
    const cases: [string, unknown][] = [
      ['/login', { email: bad, password: PASSWORD }],
      ['/login', { email: h.emails.Operator, password: bad }],
      ['/token/refresh', { refreshToken: bad }],
      ['/logout', { refreshToken: bad }],
      ['/resources/get/models', { fileName: bad, password: PASSWORD, hardware: 'ab' }],
      ['/users', { email: bad, password: PASSWORD, role: 'Operator' }],
      ['/cdn-config', { password: bad, hardware: 'ab' }],
    ];
    for (const [path, body] of cases) {
      expectError(await postJson(path, JSON.stringify(body)), 400, 'ERR_BAD_REQUEST');
    }
  });

  it('null where a string belongs is 400', async () => {
    expectError(
      await postJson('/login', JSON.stringify({ email: null, password: PASSWORD })),
      400,
      'ERR_BAD_REQUEST',
    );
    expectError(
      await postJson('/token/refresh', JSON.stringify({ refreshToken: null })),
      400,
      'ERR_BAD_REQUEST',
    );
    expectError(
      await postJson(
        '/resources/get/models',
        JSON.stringify({ fileName: 'm.bin', password: null, hardware: 'ab' }),
      ),
      400,
      'ERR_BAD_REQUEST',
    );
  });

  // Finding F1 in docs/SECURITY.md (fixed; this guards it): Fastify's default Ajv coerces types, so 123456789012345
  // becomes the password "123456789012345".
  it('a number for a string field is 400, not a user whose password is its digits', async () => {
    const r = await postJson(
      '/users',
      JSON.stringify({ email: 'digits@example.test', password: 123456789012345, role: 'Operator' }),
    );
    expectError(r, 400, 'ERR_BAD_REQUEST');
  });

  // Finding F1 in docs/SECURITY.md (fixed; this guards it): a one-element array is coerced into its element.
  it('an array for a string field is 400, not a login', async () => {
    const r = await postJson(
      '/login',
      JSON.stringify({ email: [h.emails.Operator], password: [PASSWORD] }),
    );
    expectError(r, 400, 'ERR_BAD_REQUEST');
  });

  it('a huge string in a bounded field is 400 before any work', async () => {
    const cases: [string, unknown][] = [
      ['/login', { email: `${'a'.repeat(60_000)}@x.test`, password: PASSWORD }],
      ['/login', { email: h.emails.Operator, password: 'p'.repeat(5000) }],
      ['/token/refresh', { refreshToken: 'r'.repeat(10_000) }],
      ['/resources/get/models', { fileName: 'm'.repeat(2000), password: PASSWORD, hardware: 'ab' }],
      [
        '/resources/get/models',
        { fileName: 'm.bin', password: PASSWORD, hardware: 'h'.repeat(2000) },
      ],
    ];
    for (const [path, body] of cases) {
      expectError(await postJson(path, JSON.stringify(body)), 400, 'ERR_BAD_REQUEST');
    }
  });

  it('__proto__ keys are refused and pollute nothing', async () => {
    const body = `{"email":"x@example.test","password":"${SECRET}","__proto__":{"polluted":"yes","role":"ApiAdmin"}}`;
    const r = await postJson('/login', body);
    expectError(r, 400, 'ERR_BAD_REQUEST');
    expect(r.text).not.toContain(SECRET);
    const nested = `{"email":"n@example.test","password":"${PASSWORD}","role":"Operator","x":{"__proto__":{"polluted":"yes"}}}`;
    expectError(await postJson('/users', nested), 400, 'ERR_BAD_REQUEST');
    // The server runs in this process: its Object.prototype is ours.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(await h.server.store.users.byEmail('n@example.test')).toBeUndefined();
  });

  it('constructor.prototype keys are refused and pollute nothing', async () => {
    const body = `{"email":"x@example.test","password":"p","constructor":{"prototype":{"polluted":"yes"}}}`;
    expectError(await postJson('/login', body), 400, 'ERR_BAD_REQUEST');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('missing fields are 400 on every JSON route', async () => {
    const cases: [string, unknown][] = [
      ['/login', { email: h.emails.Operator }],
      ['/login', { password: PASSWORD }],
      ['/token/refresh', {}],
      ['/logout', {}],
      ['/resources/get/models', { fileName: 'm.bin', password: PASSWORD }],
      ['/resources/get/models', { password: PASSWORD, hardware: 'ab' }],
      ['/users', { email: 'missing@example.test', password: PASSWORD }],
      [`/users/${h.ids.Operator}/role`, {}],
      ['/cdn-config', { hardware: 'ab' }],
    ];
    for (const [path, body] of cases) {
      expectError(await postJson(path, JSON.stringify(body)), 400, 'ERR_BAD_REQUEST');
    }
  });

  it('an empty body sent as JSON is 400', async () => {
    expectError(await postJson('/login', ''), 400, 'ERR_BAD_REQUEST');
    expectError(await postJson('/token/refresh', '   '), 400, 'ERR_BAD_REQUEST');
  });

  it('a body in another media type is refused (form 415, text 400)', async () => {
    const form = await raw(h.url, 'POST', '/login', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `email=${h.emails.Operator}&password=${encodeURIComponent(PASSWORD)}`,
    });
    expectError(form, 415, 'ERR_UNSUPPORTED_MEDIA_TYPE');
    const text = await raw(h.url, 'POST', '/login', {
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ email: h.emails.Operator, password: PASSWORD }),
    });
    expectError(text, 400, 'ERR_BAD_REQUEST');
  });

  it('invalid UTF-8 in a JSON body is 400, not a 500', async () => {
    const bytes = Buffer.concat([
      Buffer.from('{"email":"'),
      Buffer.from([0xff, 0xfe, 0xc3]),
      Buffer.from(`@x.test","password":"${PASSWORD}"}`),
    ]);
    const r = await raw(h.url, 'POST', '/login', {
      headers: { 'content-type': 'application/json' },
      body: bytes,
    });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
  });

  it('extra fields cannot set id, role, disabled or the hash (mass assignment)', async () => {
    const r = await postJson(
      '/users',
      JSON.stringify({
        email: 'mass@example.test',
        password: PASSWORD,
        role: 'Operator',
        id: h.ids.ApiAdmin,
        disabled: true,
        passwordHash: 'scrypt$forged',
        boundHardwareHash: 'ab',
      }),
    );
    expect(r.status).toBe(201);
    const user = (r.body as { user: { id: string; disabled: boolean; deviceBound: boolean } }).user;
    expect(user.id).not.toBe(h.ids.ApiAdmin);
    expect(user).toMatchObject({ disabled: false, deviceBound: false });
    expect((await h.server.store.users.get(h.ids.ApiAdmin))?.email).toBe(h.emails.ApiAdmin);
    expect((await login(h.url, 'mass@example.test')).accessToken).toBeTruthy();
  });
});

describe('hostile sizes and framing', () => {
  it('a JSON body over 64 KiB is 413 ERR_TOO_LARGE', async () => {
    const body = JSON.stringify({ email: h.emails.Operator, password: 'p'.repeat(70 * 1024) });
    expectError(await postJson('/login', body), 413, 'ERR_TOO_LARGE');
  });

  it('a header block over the node limit is 431 (one big header or thousands of small ones)', async () => {
    const big = await raw(h.url, 'GET', '/me', {
      headers: { authorization: `Bearer ${h.tokens.Operator}`, 'x-big': 'a'.repeat(20_000) },
    });
    expect(big.status).toBe(431);
    const many = Object.fromEntries(
      Array.from({ length: 3000 }, (_, i) => [`x-h${i}`, 'v'] as const),
    );
    expect((await raw(h.url, 'GET', '/me', { headers: many })).status).toBe(431);
  });

  it('a URL over the header limit is 431', async () => {
    const r = await raw(h.url, 'GET', `/resources/${'a'.repeat(20_000)}`, {
      headers: { authorization: `Bearer ${h.tokens.Operator}` },
    });
    expect(r.status).toBe(431);
  });

  // Finding F2 in docs/SECURITY.md (fixed; this guards it): the router's bad-URL error bypasses the API's error handler.
  it('a malformed percent-encoding (%zz, overlong UTF-8 %C0%AE) in the URL is 400 in the API error shape', async () => {
    for (const path of ['/resources/a%zz', '/resources/%C0%AE%C0%AE/m.bin/big']) {
      const r = await raw(h.url, 'GET', path, {
        headers: { authorization: `Bearer ${h.tokens.Operator}` },
      });
      expect(r.status).toBe(400);
      expectError(r, 400, 'ERR_BAD_REQUEST');
    }
  });

  it('request smuggling: Content-Length together with Transfer-Encoding is refused 400', async () => {
    const answer = await socketExchange(
      'POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\n' +
        'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /users HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    // The smuggled second request was never answered.
    expect(answer.match(/HTTP\/1\.1 /g)).toHaveLength(1);
  });

  it('a body cut short of its Content-Length leaves the server serving', async () => {
    const answer = await socketExchange(
      'POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"email":"',
      false,
    );
    expect(answer).toBe('');
    // And a well-formed login right after it works.
    const r = await call(h.url, 'POST', '/login', {
      json: { email: h.emails.Operator, password: PASSWORD },
    });
    expect(r.status).toBe(200);
  });
});
