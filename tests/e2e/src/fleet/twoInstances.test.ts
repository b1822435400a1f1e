// Two `sluice serve` processes, A and B, over one PostgreSQL database and one S3 bucket: what a
// client does on one instance holds on the other (tokens, one-time parcel tokens, a disabled
// account, a device binding), and a pull through a round-robin proxy survives A's SIGKILL.
import { randomBytes, sign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PARCEL_HEADERS, ParcelClient, pull } from '@sluice/core';
import { describe, expect, it } from 'vitest';
import {
  ADMIN_EMAIL,
  DEVICE_USER,
  MiB,
  onCleanup,
  PASSWORD,
  removeDir,
  sha,
  tempDir,
  UPLOADER,
} from '../apiServer.js';
import type { FaultProxy } from '../faults/faultProxy.js';
import { CHUNK, HW, proxyFor, sessionAt } from '../faults/faultWorld.js';
import {
  type Fleet,
  type FleetEnv,
  type FleetOptions,
  fleetEnv,
  type Instance,
  startFleet,
} from './fleet.js';
import { addUser, call, envelopeAt, loginAt, pushModel } from './fleetApi.js';
import { type Exchange, RoundRobin } from './roundRobin.js';

const env = fleetEnv();
/** The environment inside the tests (they are skipped without one). */
const fleetOf = (options?: FleetOptions) => startFleet(env as FleetEnv, options);

/** A round robin over A (upstream 0) and B (upstream 1), closed after the test. */
async function proxyOver(f: Fleet): Promise<RoundRobin> {
  const proxy = await RoundRobin.start([f.a.url, f.b.url]);
  onCleanup(() => proxy.close());
  return proxy;
}

const NAMES = ['A', 'B'];
/** `METHOD /path → A` for an exchange. */
const routed = (e: Exchange) => `${e.method} ${e.path} → ${NAMES[e.upstream ?? -1] ?? 'none'}`;

/** A fleet with an uploader and a device user (created on A), and models/m.bin pushed on A. */
async function fleetWithModel(
  size: number,
  options?: FleetOptions,
): Promise<{ f: Fleet; plain: Buffer; deviceId: string }> {
  const f = await fleetOf(options);
  await addUser(f.a.url, UPLOADER, 'ResourceUploader');
  const deviceId = await addUser(f.a.url, DEVICE_USER, 'Operator');
  const plain = await pushModel(f.a.url, UPLOADER, size, CHUNK);
  return { f, plain, deviceId };
}

describe.skipIf(!env)('two instances over one PostgreSQL and one S3 bucket', () => {
  it('logged in on A, pulled through B, refreshed on A: no second login anywhere', async () => {
    const { f, plain } = await fleetWithModel(3 * MiB);
    const proxy = await proxyOver(f);
    let target = 0;
    proxy.choose = () => target;
    const device = await sessionAt(proxy.url);
    target = 1;
    const got = await pull(device, 'models', 'm.bin', {
      to: 'buffer',
      password: PASSWORD,
      hardware: HW,
    });
    expect(sha(got.data)).toBe(sha(plain));
    target = 0;
    const before = device.user?.jti;
    const after = await device.refresh();
    expect(after.jti).not.toBe(before);
    target = 1;
    expect(await device.request('GET', '/me')).toMatchObject({ user: { email: DEVICE_USER } });

    // Every byte of the big part came from B, in ranges.
    const big = proxy.requests('GET', '/big');
    const last = Math.max(...big.map((e) => Number(/-(\d+)$/.exec(e.range ?? '')?.[1])));
    expect(big.length).toBeGreaterThan(1);
    expect(big.reduce((n, e) => n + e.responseBytes, 0)).toBe(last + 1);
    expect(new Set(big.map((e) => `${routed(e)} ${e.status} ${e.outcome}`))).toEqual(
      new Set([`GET /resources/models/m.bin/big → B 206 complete`]),
    );
    // A token B refused would have shown up here as a renewal or a second login.
    expect(proxy.log.filter((e) => !e.path.endsWith('/big')).map(routed)).toEqual([
      'POST /login → A',
      'GET /.well-known/jwks.json → A',
      'POST /resources/get/models → B',
      'POST /token/refresh → A',
      'GET /me → B',
    ]);
  });

  it('a parcel token issued by A is consumed by B; replayed on A it is refused as used', async () => {
    const f = await fleetOf();
    const proxy = await proxyOver(f);
    // Tokens from A, every signed request to B.
    proxy.choose = (req) => (req.url === '/api/v1/auth' ? 0 : 1);
    const client = new ParcelClient({ baseUrl: proxy.url, privateKey: ParcelClient.generateKey() });
    const content = randomBytes(300 * 1024);
    const put = await client.put(content);
    expect(put).toEqual({ id: client.parcelId(sha(content)), existed: false });
    expect(proxy.log.map((e) => `${routed(e)} ${e.status}`)).toEqual([
      'POST /api/v1/auth → A 200',
      'POST /api/v1/parcels → B 201',
    ]);

    const sent = proxy.requests('POST', '/api/v1/parcels')[0]?.headers ?? {};
    const replay = (instance: Instance) =>
      fetch(`${instance.url}/api/v1/parcels`, {
        method: 'POST',
        headers: {
          'content-type': 'application/octet-stream',
          [PARCEL_HEADERS.token]: String(sent[PARCEL_HEADERS.token]),
          [PARCEL_HEADERS.publicKey]: String(sent[PARCEL_HEADERS.publicKey]),
          [PARCEL_HEADERS.signature]: String(sent[PARCEL_HEADERS.signature]),
        },
        body: content,
      });
    const onA = await replay(f.a);
    // Accepted, it would be 200 {existed: true}: the content is stored already.
    expect([onA.status, ((await onA.json()) as { code?: string }).code]).toEqual([
      401,
      'ERR_UNAUTHORIZED',
    ]);
    // A's verify finds the jti used (its log says 'token'; 'replayed' is a lost race in consume).
    // Its log line comes through A's stdout, maybe just after the answer.
    await expect
      .poll(() => f.a.events('parcel.refused').map((e) => e.reason), { timeout: 5000 })
      .toEqual(['token']);

    // What B stored is A's to serve: token and download both on A.
    proxy.choose = () => 0;
    const got = await client.get(put.id, { to: 'buffer' });
    expect(got.data?.equals(content)).toBe(true);
  });

  it('one parcel token sent to A and to B at once: exactly one of them serves it', async () => {
    const f = await fleetOf();
    const pem = ParcelClient.generateKey();
    const client = new ParcelClient({ baseUrl: f.a.url, privateKey: pem });
    const content = randomBytes(64 * 1024);
    const { id } = await client.put(content);
    const token = await call<{ token: string }>(f.a.url, 'POST', '/api/v1/auth', {
      json: { user: client.address, operation: { name: 'download', id } },
    });
    const headers = {
      [PARCEL_HEADERS.token]: token.body.token,
      [PARCEL_HEADERS.publicKey]: client.publicKeyHex,
      [PARCEL_HEADERS.signature]: sign('sha256', Buffer.from(token.body.token), {
        key: pem,
        dsaEncoding: 'ieee-p1363',
      }).toString('hex'),
    };
    const answers = await Promise.all(
      [f.a, f.b].map(async (instance) => {
        const res = await fetch(`${instance.url}/api/v1/parcels/${id}`, { headers });
        return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
      }),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([200, 401]);
    expect(answers.find((a) => a.status === 200)?.body.equals(content)).toBe(true);
  });

  it('a user disabled on B is refused on A at once, though A had its envelope key cached', async () => {
    const { f, deviceId } = await fleetWithModel(200 * 1024);
    const device = await loginAt(f.a.url, DEVICE_USER);
    const first = await envelopeAt(f.a.url, device.accessToken, HW);
    const second = await envelopeAt(f.a.url, device.accessToken, HW);
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(first.headers.get('server-timing')).toContain('cache;desc=miss');
    expect(second.headers.get('server-timing')).toContain('cache;desc=hit');

    const admin = await loginAt(f.b.url, ADMIN_EMAIL);
    const disabled = await call<{ user: { disabled: boolean } }>(
      f.b.url,
      'POST',
      `/users/${deviceId}/disable`,
      { token: admin.accessToken },
    );
    expect([disabled.status, disabled.body.user.disabled]).toEqual([200, true]);

    const third = await envelopeAt(f.a.url, device.accessToken, HW);
    expect([third.status, third.body.code]).toEqual([401, 'ERR_UNAUTHORIZED']);
    const refreshed = await call(f.a.url, 'POST', '/token/refresh', {
      json: { refreshToken: device.refreshToken },
    });
    expect([refreshed.status, refreshed.body.code]).toEqual([401, 'ERR_UNAUTHORIZED']);
  });

  it('A SIGKILLed in the middle of a pull through the round robin: the pull completes on B', async () => {
    // A reads the bucket through a proxy that can stall one ranged read: A is then surely in the
    // middle of an answer when it dies (an answer already in the socket buffers would not be cut).
    const storageOfA = await proxyFor((env as FleetEnv).s3.endpoint);
    const { f, plain } = await fleetWithModel(64 * MiB, { storageEndpointOfA: storageOfA.url });
    const proxy = await proxyOver(f);
    const device = await sessionAt(proxy.url);
    const work = await tempDir('sluice-fleet-pull-');
    onCleanup(() => removeDir(work));
    const out = join(work, 'm.bin');
    let killed: Promise<Exchange> | undefined;
    const result = await pull(device, 'models', 'm.bin', {
      to: out,
      password: PASSWORD,
      hardware: HW,
      onProgress: ({ loaded, total }) => {
        if (killed === undefined && loaded >= total / 4) {
          killed = killMidAnswer(f.a, storageOfA, proxy);
          killed.catch(() => {}); // awaited below, after the pull
        }
      },
    });
    const cutOff = await killed;
    expect(f.a.run.child.signalCode).toBe('SIGKILL');
    expect(result.size).toBe(plain.length);
    expect(sha(await readFile(out))).toBe(sha(plain));

    const big = proxy.requests('GET', '/big');
    const fromA = big.filter((e) => e.upstream === 0);
    const cut = fromA.filter((e) => e.outcome === 'cut');
    expect(fromA.filter((e) => e.outcome === 'complete').length).toBeGreaterThan(0);
    expect(cut).toContain(cutOff);
    // It was cut with part of its body relayed: the client held a torn chunk.
    expect(cutOff?.status).toBe(206);
    expect(cutOff?.responseBytes).toBeGreaterThan(0);
    expect(cutOff?.responseBytes).toBeLessThan(cutOff?.length ?? 0);
    // Each range cut off by the kill was asked for again and answered in full by B.
    for (const c of cut) {
      const again = big.filter((e) => e.n > c.n && e.range === c.range);
      expect(again.map((e) => `${NAMES[e.upstream ?? -1]} ${e.outcome}`)).toContain('B complete');
    }
    // The turns that fell on A after its death went on to B.
    expect(big.filter((e) => e.refused.includes(0)).length).toBeGreaterThan(0);
    expect(big.filter((e) => e.outcome !== 'complete' && e.outcome !== 'cut')).toEqual([]);
  });

  it('two first binds of one account at once, on A and on B: exactly one device wins', async () => {
    const f = await fleetOf();
    await addUser(f.a.url, UPLOADER, 'ResourceUploader');
    await pushModel(f.a.url, UPLOADER, 200 * 1024);
    const emails = [1, 2, 3, 4].map((i) => `racer${i}@example.com`);
    for (const email of emails) await addUser(f.b.url, email, 'Operator');
    const races = await Promise.all(emails.map((email) => raceFirstBinds(f, email)));
    for (const race of races) {
      const outcomes = race.answers.map((a) => `${a.status} ${a.body.code ?? ''}`.trim());
      expect(outcomes.sort()).toEqual(['200', '403 ERR_DEVICE_NOT_BOUND']);
      // The winner's device is the account's on both instances, the loser's on neither.
      const won = race.answers[0]?.status === 200 ? 0 : 1;
      const [winner, loser] = [race.devices[won], race.devices[1 - won]];
      for (const instance of [f.a, f.b]) {
        const token = (await loginAt(instance.url, race.email)).accessToken;
        expect((await envelopeAt(instance.url, token, winner as string)).status).toBe(200);
        const refused = await envelopeAt(instance.url, token, loser as string);
        expect([refused.status, refused.body.code]).toEqual([403, 'ERR_DEVICE_NOT_BOUND']);
      }
    }
  });

  it('the login limiter is shared: failures counted on A and B lock the account on both', async () => {
    const f = await fleetOf();
    await addUser(f.a.url, DEVICE_USER, 'Operator');
    const wrong = (url: string) =>
      call(url, 'POST', '/login', { json: { email: DEVICE_USER, password: 'not the password' } });
    // The default budget of a (account, address) pair is 10 failures: 5 on each instance.
    for (let i = 0; i < 5; i++) {
      expect((await wrong(f.a.url)).status).toBe(401);
      expect((await wrong(f.b.url)).status).toBe(401);
    }
    const locked = await wrong(f.b.url);
    expect([locked.status, locked.body.code]).toEqual([429, 'ERR_RATE_LIMITED']);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    // Even the right password waits, on the other instance too.
    const right = await call(f.a.url, 'POST', '/login', {
      json: { email: DEVICE_USER, password: PASSWORD },
    });
    expect([right.status, right.body.code]).toEqual([429, 'ERR_RATE_LIMITED']);
  });
});

/**
 * Stalls A's next ranged read from the bucket after 64 KiB, waits until A is answering that range
 * through the round robin, then SIGKILLs A. Resolves with the exchange that was cut off.
 */
async function killMidAnswer(a: Instance, storage: FaultProxy, proxy: RoundRobin) {
  let stalls = 0;
  storage.rule = (r) =>
    r.method === 'GET' && r.range !== undefined && stalls++ === 0
      ? { kind: 'stall', afterBytes: 64 * 1024 }
      : undefined;
  await storage.waitFor('a ranged read of A stalled', (log) =>
    log.some((e) => e.action === 'stall' && e.responseBytes >= 64 * 1024),
  );
  const range = storage.log.find((e) => e.action === 'stall')?.range;
  const answering = (e: Exchange) =>
    e.upstream === 0 && e.range === range && e.outcome === 'open' && e.responseBytes > 0;
  await proxy.waitFor(`A answering ${range}`, (log) => log.some(answering));
  const exchange = proxy.log.find(answering) as Exchange;
  await a.kill();
  return exchange;
}

/** Device A and device B of `email` ask for their first envelope at once, on A and on B. */
async function raceFirstBinds(f: Fleet, email: string) {
  const devices = [sha(`${email} on A`), sha(`${email} on B`)];
  const [onA, onB] = await Promise.all([loginAt(f.a.url, email), loginAt(f.b.url, email)]);
  const answers = await Promise.all([
    envelopeAt(f.a.url, onA.accessToken, devices[0] as string),
    envelopeAt(f.b.url, onB.accessToken, devices[1] as string),
  ]);
  return { email, devices, answers };
}
