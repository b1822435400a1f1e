// The seat limit against the real server on loopback (and, with SLUICE_TEST_STORE=postgres, on
// PostgreSQL): POST /cdn-config binds a device the same way the envelope route does.
import { canonicalHardware, factorDigests, hashCanonicalHardware } from '@sluice/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addUser,
  call,
  login,
  PASSWORD,
  patchUser,
  type Running,
  removeDir,
  runCleanup,
  startServer,
} from '../test-helpers.js';

const cleanup: (() => Promise<void>)[] = [];
afterAll(() => runCleanup(cleanup));

let s: Running;
let admin: string;
beforeAll(async () => {
  s = await startServer({ deviceBinding: { driftCooldownMs: 0 } });
  cleanup.push(async () => {
    await s.close();
    await removeDir(s.dataDir);
  });
  await addUser(s, 'admin@example.test', 'Admin');
  admin = (await login(s.url, 'admin@example.test')).accessToken;
});

/** A new organisation with `seats` seats (straight in the store, as the org routes would). */
async function org(id: string, seats: number | null): Promise<void> {
  await s.server.store.db.query(
    'INSERT INTO organisations (id, name, created_at) VALUES ($1, $1, $2)',
    [id, new Date().toISOString()],
  );
  expect(await s.server.store.limits.set(id, { seatLimit: seats, monthlyQuotaBytes: null })).toBe(
    true,
  );
}

let users = 0;
/** A new Operator of organisation `orgId`: its id, email and a token. */
async function member(orgId: string) {
  const email = `seat${++users}@example.test`;
  const { id } = await addUser(s, email, 'Operator');
  await patchUser(s, id, { orgId });
  return { id, email, token: (await login(s.url, email)).accessToken };
}

/** What a current client of machine `n` sends (ten factors; `diskSerial` varies a drift). */
function machine(n: number, diskSerial = 'disk') {
  const factors = {
    'system.uuid': `uuid-${n}`,
    'system.serial': `serial-${n}`,
    'board.serial': `board-${n}`,
    'cpu.model': 'cpu',
    'cpu.cores': '8',
    'disk.serial': `${diskSerial}-${n}`,
    'memory.gib': '16',
    'os.machineId': `machine-${n}`,
  };
  return {
    hardware: hashCanonicalHardware(canonicalHardware(factors)),
    hardwareFactors: factorDigests(factors),
  };
}

function bind(d: { token: string }, device: ReturnType<typeof machine>) {
  return call(s.url, 'POST', '/cdn-config', {
    token: d.token,
    json: { password: PASSWORD, ...device },
  });
}

describe('the seat limit', () => {
  it('refuses the first bind past the limit with ERR_SEAT_LIMIT, binding nothing', async () => {
    await org('two-seats', 2);
    const [a, b, c] = [
      await member('two-seats'),
      await member('two-seats'),
      await member('two-seats'),
    ];
    expect((await bind(a, machine(1))).status).toBe(200);
    expect((await bind(b, machine(2))).status).toBe(200);
    const refused = await bind(c, machine(3));
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: 'ERR_SEAT_LIMIT' });
    expect((refused.body as { error: string }).error).toMatch(
      /two-seats has all of its 2 device seats/,
    );
    expect(await s.server.store.users.get(c.id)).toMatchObject({ boundHardwareHash: null });
    expect(await s.server.store.limits.boundSeats('two-seats')).toBe(2);
  });

  it('a bound account drifting or coming back uses no new seat; a reset frees its seat', async () => {
    await org('full', 1);
    const [a, b] = [await member('full'), await member('full')];
    expect((await bind(a, machine(4))).status).toBe(200);
    expect((await bind(a, machine(4))).status).toBe(200);
    // A changed disk: the binding moves to it, still one seat.
    const drifted = await bind(a, machine(4, 'new-disk'));
    expect(drifted.status).toBe(200);
    expect((await s.server.store.users.get(a.id))?.boundHardwareHash).toBe(
      machine(4, 'new-disk').hardware,
    );
    expect((await bind(b, machine(5))).body).toMatchObject({ code: 'ERR_SEAT_LIMIT' });
    const reset = await call(s.url, 'POST', `/users/${a.id}/reset-device`, { token: admin });
    expect(reset.status).toBe(200);
    expect(await s.server.store.limits.boundSeats('full')).toBe(0);
    expect((await bind(b, machine(5))).status).toBe(200);
    // The reset ended a's sessions: it signs in again and finds the seat taken.
    const again = { token: (await login(s.url, a.email)).accessToken };
    expect((await bind(again, machine(4))).body).toMatchObject({ code: 'ERR_SEAT_LIMIT' });
  });

  it('of concurrent first binds racing for the last seat exactly one wins', async () => {
    await org('last-seat', 3);
    const holders = [await member('last-seat'), await member('last-seat')];
    for (const [i, h] of holders.entries())
      expect((await bind(h, machine(10 + i))).status).toBe(200);
    const racers = [];
    for (let i = 0; i < 4; i++) racers.push(await member('last-seat'));
    const replies = await Promise.all(racers.map((r, i) => bind(r, machine(20 + i))));
    expect(replies.map((r) => r.status).sort()).toEqual([200, 403, 403, 403]);
    for (const r of replies.filter((x) => x.status === 403)) {
      expect(r.body).toMatchObject({ code: 'ERR_SEAT_LIMIT' });
    }
    expect(await s.server.store.limits.boundSeats('last-seat')).toBe(3);
  });

  it('an organisation without a seat limit binds any number of accounts', async () => {
    await org('unlimited', null);
    for (let i = 0; i < 3; i++) {
      expect((await bind(await member('unlimited'), machine(30 + i))).status).toBe(200);
    }
    expect(await s.server.store.limits.boundSeats('unlimited')).toBe(3);
  });
});
