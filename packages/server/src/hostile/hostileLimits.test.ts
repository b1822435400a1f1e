// Hostile-input suite (docs/SECURITY.md): the login limits turned against the users they
// protect — someone else's wrong passwords locking a device out, one NAT sharing one budget,
// guessing spread over many addresses — on the real server. Client addresses other than
// loopback come from X-Forwarded-For, which these servers trust from 127.0.0.1 (`trustProxy`).
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import type { ServerOptions } from '../app/settings.js';
import {
  addUser,
  call,
  login,
  PASSWORD,
  type Running,
  removeDir,
  startServer,
} from '../test-helpers.js';
import { expectError, fieldsOf, formOf, multipart, raw, sealRandom } from './test-hostile.js';

const HW = 'c3'.repeat(32);
const DEVICE_ADDRESS = '198.51.100.7';
const ATTACKER_ADDRESS = '203.0.113.66';

const servers: Running[] = [];
afterAll(async () => {
  for (const s of servers) {
    await s.close();
    await removeDir(s.dataDir);
  }
});

/** A server with the default limits (or `options`' own) that trusts X-Forwarded-For from loopback. */
async function server(options: Partial<ServerOptions> = {}): Promise<Running> {
  const s = await startServer({ trustProxy: '127.0.0.1', ...options });
  servers.push(s);
  return s;
}

/** `POST /login` as seen from `address`. */
function loginFrom(s: Running, address: string, email: string, password: string) {
  return call(s.url, 'POST', '/login', {
    headers: { 'x-forwarded-for': address },
    json: { email, password },
  });
}

/** A device account with its access token and one resource it may fetch. */
async function withDevice(s: Running, email = 'device@example.test') {
  await addUser(s, email, 'Operator');
  await addUser(s, 'uploader@example.test', 'ResourceUploader');
  const up = await login(s.url, 'uploader@example.test');
  const { bytes, type } = await multipart(formOf(fieldsOf(await sealRandom(20_000), 'm.bin')));
  const stored = await raw(s.url, 'POST', '/resources/models', {
    headers: { authorization: `Bearer ${up.accessToken}`, 'content-type': type },
    body: bytes,
  });
  expect(stored.status).toBe(201);
  const token = (await loginFrom(s, DEVICE_ADDRESS, email, PASSWORD)).body as {
    accessToken: string;
  };
  return { email, token: token.accessToken };
}

/** The device's envelope request, from `address`. */
function envelope(s: Running, token: string, password: string, address = DEVICE_ADDRESS) {
  return call(s.url, 'POST', '/resources/get/models', {
    token,
    headers: { 'x-forwarded-for': address },
    json: { fileName: 'm.bin', password, hardware: HW },
  });
}

describe('login limits an attacker cannot turn against a device', () => {
  it("someone else's wrong logins against a device's email do not lock its envelope requests (valid token, right password)", async () => {
    const s = await server();
    const device = await withDevice(s);
    expect((await envelope(s, device.token, PASSWORD)).status).toBe(200);
    // From the device's own address, even: the token's requests have their own budget.
    for (const address of [ATTACKER_ADDRESS, DEVICE_ADDRESS]) {
      for (let i = 0; i < 12; i++) {
        await loginFrom(s, address, device.email, `guess number ${i} of the attacker`);
      }
    }
    expect((await envelope(s, device.token, PASSWORD)).status).toBe(200);
  });

  it('wrong logins from one address lock that (account, address) pair only: the device logs in from its own', async () => {
    const s = await server();
    await addUser(s, 'target@example.test', 'Operator');
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await loginFrom(s, ATTACKER_ADDRESS, 'target@example.test', `guess ${i} xxxxxxx`);
      statuses.push(r.status);
    }
    expect(statuses).toEqual([...Array(10).fill(401), 429, 429]);
    const device = await loginFrom(s, DEVICE_ADDRESS, 'target@example.test', PASSWORD);
    expect(device.status).toBe(200);
    // The attacker's own pair stays locked, right password or not.
    const right = await loginFrom(s, ATTACKER_ADDRESS, 'target@example.test', PASSWORD);
    expectError(right, 429, 'ERR_RATE_LIMITED');
    expect(Number(right.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('devices behind one NAT logging in successfully share no budget; failures from that address still do', async () => {
    const s = await server({
      loginLimits: { perAddress: { limit: 5, windowSeconds: 60 } },
    });
    for (let i = 0; i < 12; i++) {
      await addUser(s, `fleet-${i}@example.test`, 'Operator');
      const r = await loginFrom(s, DEVICE_ADDRESS, `fleet-${i}@example.test`, PASSWORD);
      expect(r.status, `device ${i}`).toBe(200);
    }
    // A spray over many accounts from that address is still bounded.
    for (let i = 0; i < 5; i++) {
      const r = await loginFrom(s, DEVICE_ADDRESS, `sprayed-${i}@example.test`, 'not the password');
      expect(r.status).toBe(401);
    }
    const over = await loginFrom(s, DEVICE_ADDRESS, 'fleet-0@example.test', PASSWORD);
    expectError(over, 429, 'ERR_RATE_LIMITED');
  });

  it('guessing spread over many addresses is slowed past the per-account ceiling, not locked out; the known device is not slowed', async () => {
    const s = await server({ loginLimits: { perAccount: { limit: 20, windowSeconds: 40 } } });
    await addUser(s, 'spread@example.test', 'Operator');
    expect((await loginFrom(s, DEVICE_ADDRESS, 'spread@example.test', PASSWORD)).status).toBe(200);
    const guess = (i: number) =>
      loginFrom(s, `192.0.2.${i}`, 'spread@example.test', `distributed guess ${i}`);
    // All at once, as a botnet would: each is counted as it is let through.
    const first = await Promise.all(Array.from({ length: 20 }, (_, i) => guess(i + 1)));
    expect(first.map((r) => r.status)).toEqual(Array(20).fill(401));
    const slowed = await guess(21);
    expectError(slowed, 429, 'ERR_RATE_LIMITED');
    // One attempt per windowSeconds / limit = 2 s: a wait, not a lockout.
    const wait = Number(slowed.headers.get('retry-after'));
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(wait).toBeLessThanOrEqual(2);
    expect((await loginFrom(s, DEVICE_ADDRESS, 'spread@example.test', PASSWORD)).status).toBe(200);
    await sleep(wait * 1000 + 100);
    expect((await guess(22)).status).toBe(401);
  });

  it('wrong envelope passwords are limited per (user, address) on their own budget, not against logins', async () => {
    const s = await server({
      loginLimits: {
        withToken: { limit: 3, lockSeconds: 60, maxLockSeconds: 60, forgetSeconds: 60 },
      },
    });
    const device = await withDevice(s);
    for (let i = 0; i < 3; i++) {
      expect((await envelope(s, device.token, `${PASSWORD}-guess${i}`)).status).toBe(401);
    }
    const locked = await envelope(s, device.token, PASSWORD);
    expectError(locked, 429, 'ERR_RATE_LIMITED');
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    // The same token from another address, and a login from the same one, are not locked.
    expect((await envelope(s, device.token, PASSWORD, '192.0.2.200')).status).toBe(200);
    expect((await loginFrom(s, DEVICE_ADDRESS, device.email, PASSWORD)).status).toBe(200);
  });
});
