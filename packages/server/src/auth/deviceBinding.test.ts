// Drift-tolerant binding against the real server on loopback (and, with SLUICE_TEST_STORE=postgres,
// on PostgreSQL): POST /cdn-config binds and checks the device the same way the envelope route does.
import { readFile } from 'node:fs/promises';
import {
  canonicalHardware,
  deriveEnvelopeKey,
  factorDigests,
  type HardwareFactor,
  hashCanonicalHardware,
  isSluiceError,
  openEnvelope,
} from '@sluice/core';
import { CDN_CONFIG_AAD } from '@sluice/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../app/createServer.js';
import type { ServerOptions } from '../app/settings.js';
import {
  addUser,
  call,
  login,
  ON_POSTGRES,
  PASSWORD,
  type Running,
  removeDir,
  runCleanup,
  startServer,
  TEST_SCRYPT,
  tempDir,
} from '../test-helpers.js';
import { DEFAULT_BINDING_POLICY, matchFactors, resolveBindingPolicy } from './driftPolicy.js';

type Factors = Partial<Record<HardwareFactor, string>>;

/** A ten-factor machine (docs/FORMAT.md §7's vector, one more serial). */
const MACHINE: Factors = {
  'system.uuid': '4c4c4544-0042-3510-8051-b4c04f4b4d32',
  'system.manufacturer': 'dell inc.',
  'system.model': 'precision 3660',
  'system.serial': 'h7x2lq3',
  'board.serial': '/h7x2lq3/cn1296324b0123/',
  'cpu.model': 'intel core i7-12700',
  'cpu.cores': '20',
  'disk.serial': 's6b0nl0w123456',
  'memory.gib': '32',
  'os.machineId': '3d1219c7c4c5404aaa1f6d2a48adfda4',
};
/** What a container sees: four factors. */
const CONTAINER: Factors = {
  'cpu.model': 'intel core i7-12700',
  'cpu.cores': '20',
  'memory.gib': '32',
  'os.machineId': '9a0c1f3e5b7d4e2f8a6c4b2d0e8f6a4c',
};

/** `factors` with each named factor given a new value. */
function drift(factors: Factors, ...names: HardwareFactor[]): Factors {
  const out = { ...factors };
  for (const n of names) out[n] = `${out[n] ?? 'x'}-replaced`;
  return out;
}

/** What a current client sends for these factors: the hash and the digests. */
function claim(factors: Factors) {
  return {
    hardware: hashCanonicalHardware(canonicalHardware(factors)),
    hardwareFactors: factorDigests(factors),
  };
}

const LIMITS = {
  perClient: { limit: 100_000, lockSeconds: 1, maxLockSeconds: 1, forgetSeconds: 60 },
  perAddress: { limit: 100_000, windowSeconds: 60 },
  perAccount: { limit: 100_000, windowSeconds: 60 },
  withToken: { limit: 100_000, lockSeconds: 1, maxLockSeconds: 1, forgetSeconds: 60 },
};

const cleanup: (() => Promise<void>)[] = [];
afterAll(() => runCleanup(cleanup));

interface Server {
  s: Running;
  log: string[];
  admin: string;
}

async function server(options: Partial<ServerOptions> = {}): Promise<Server> {
  const log: string[] = [];
  const s = await startServer({
    logger: { level: 'info', stream: { write: (line: string) => log.push(line) } },
    loginLimits: LIMITS,
    ...options,
  });
  cleanup.push(async () => {
    await s.close();
    await removeDir(s.dataDir);
  });
  await addUser(s, 'admin@example.test', 'Admin');
  return { s, log, admin: (await login(s.url, 'admin@example.test')).accessToken };
}

let users = 0;
/** A new Operator on `srv`: its id, email and a token. */
async function device(srv: Server) {
  const email = `device${++users}@example.test`;
  const { id } = await addUser(srv.s, email, 'Operator');
  return { id, email, token: (await login(srv.s.url, email)).accessToken };
}

type Device = Awaited<ReturnType<typeof device>>;

function ask(srv: Server, d: Device, body: Record<string, unknown>) {
  return call(srv.s.url, 'POST', '/cdn-config', {
    token: d.token,
    json: { password: PASSWORD, ...body },
  });
}

const events = (srv: Server, event: string) =>
  srv.log.filter((l) => JSON.parse(l).event === event).map((l) => JSON.parse(l));

describe('the match rule', () => {
  const policy = DEFAULT_BINDING_POLICY;
  const bound = factorDigests(MACHINE);

  it('needs all but one of n, and never fewer than 3', () => {
    expect(matchFactors(bound, factorDigests(drift(MACHINE, 'disk.serial')), policy)).toMatchObject(
      { bound: 10, required: 9, matched: 9, changed: ['disk.serial'], accepted: true },
    );
    const two = matchFactors(
      bound,
      factorDigests(drift(MACHINE, 'disk.serial', 'board.serial')),
      policy,
    );
    expect(two).toMatchObject({ matched: 8, required: 9, accepted: false });
    const wide = resolveBindingPolicy({ maxDrift: 8 });
    const c = factorDigests(CONTAINER);
    expect(matchFactors(c, factorDigests(drift(CONTAINER, 'cpu.model')), wide)).toMatchObject({
      required: 3,
      accepted: true,
    });
    expect(
      matchFactors(c, factorDigests(drift(CONTAINER, 'cpu.model', 'memory.gib')), wide),
    ).toMatchObject({ required: 3, matched: 2, accepted: false });
  });

  it('needs one identifying factor unchanged: CPU and memory alone are any machine of a model', () => {
    const c = factorDigests(CONTAINER);
    const sameModel = factorDigests(drift(CONTAINER, 'os.machineId'));
    expect(matchFactors(c, sameModel, policy)).toMatchObject({
      matched: 3,
      required: 3,
      identifying: 0,
      accepted: false,
    });
    const m = matchFactors(bound, factorDigests(drift(MACHINE, 'disk.serial')), policy);
    expect(m.identifying).toBe(4);
  });

  it('counts a missing factor as drifted and an added one as neither', () => {
    const { 'disk.serial': _gone, ...fewer } = MACHINE;
    expect(matchFactors(bound, factorDigests(fewer), policy)).toMatchObject({
      matched: 9,
      missing: ['disk.serial'],
      accepted: true,
    });
    const more = matchFactors(factorDigests(fewer), bound, policy);
    expect(more).toMatchObject({ bound: 9, matched: 9, added: ['disk.serial'], accepted: true });
  });

  it('matches the drifted-device vector of docs/FORMAT.md §7.1', async () => {
    const doc = await readFile(new URL('../../../../docs/FORMAT.md', import.meta.url), 'utf8');
    const block = (info: string) =>
      JSON.parse(doc.split(`\`\`\`json ${info}\n`)[1]?.split('```')[0] ?? '');
    const vector = block('hardware-drifted');
    const now = { ...block('hardware-factors'), 'disk.serial': vector['disk.serial'] };
    const m = matchFactors(block('hardware-factor-digests'), factorDigests(now), policy);
    expect({
      changed: m.changed,
      matched: m.matched,
      of: m.bound,
      required: m.required,
      identifying: m.identifying,
      accepted: m.accepted,
    }).toEqual(vector.match);
  });

  it('refuses a policy below the floor or malformed', () => {
    for (const bad of [
      { minMatch: 2 },
      { maxDrift: -1 },
      { maxDrift: 1.5 },
      { driftCooldownMs: -1 },
    ]) {
      expect(() => resolveBindingPolicy(bad)).toThrow(/deviceBinding\./);
    }
  });
});

describe('a drifted device on the real server', () => {
  let srv: Server;
  beforeAll(async () => {
    srv = await server({ deviceBinding: { driftCooldownMs: 0 } });
  });

  it('exactly k of n matching is accepted, the binding moves, one audit line names the factor', async () => {
    const d = await device(srv);
    expect((await ask(srv, d, claim(MACHINE))).status).toBe(200);
    const drifted = drift(MACHINE, 'disk.serial');
    const reply = await ask(srv, d, claim(drifted));
    expect(reply.status).toBe(200);
    // The envelope is sealed under the key of the hash the device has now.
    const key = await deriveEnvelopeKey(d.email, PASSWORD, claim(drifted).hardware);
    expect(openEnvelope(key, reply.body, CDN_CONFIG_AAD).small.length).toBeGreaterThan(0);
    const user = await srv.s.server.store.users.get(d.id);
    expect(user?.boundHardwareHash).toBe(claim(drifted).hardware);
    expect(user?.boundHardwareFactors).toEqual(factorDigests(drifted));
    const lines = events(srv, 'device.drifted').filter((l) => l.userId === d.id);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ changed: ['disk.serial'], missing: [], matched: 9, of: 10 });
    const raw = srv.log.join('\n');
    expect(raw).not.toContain('s6b0nl0w123456');
    expect(raw).not.toContain(factorDigests(drifted)['disk.serial']);
    // The old disk back is a drift again (from the moved binding), accepted the same way.
    expect((await ask(srv, d, claim(MACHINE))).status).toBe(200);
  });

  it('k − 1 matching is 403 ERR_DEVICE_NOT_BOUND and changes nothing', async () => {
    const d = await device(srv);
    await ask(srv, d, claim(MACHINE));
    const reply = await ask(srv, d, claim(drift(MACHINE, 'disk.serial', 'os.machineId')));
    expect(reply.status).toBe(403);
    expect(reply.body).toMatchObject({ code: 'ERR_DEVICE_NOT_BOUND' });
    const user = await srv.s.server.store.users.get(d.id);
    expect(user?.boundHardwareHash).toBe(claim(MACHINE).hardware);
    expect(user?.boundHardwareFactors).toEqual(factorDigests(MACHINE));
    const refused = events(srv, 'device.refused').filter((l) => l.userId === d.id);
    expect(refused).toMatchObject([{ reason: 'drift', matched: 8, of: 10, required: 9 }]);
  });

  it('a device that dropped a factor is accepted, and the binding keeps only what it sent', async () => {
    const d = await device(srv);
    await ask(srv, d, claim(MACHINE));
    const { 'disk.serial': _d, ...fewer } = MACHINE;
    expect((await ask(srv, d, claim(fewer))).status).toBe(200);
    const line = events(srv, 'device.drifted').find((l) => l.userId === d.id);
    expect(line).toMatchObject({ changed: [], missing: ['disk.serial'] });
    const user = await srv.s.server.store.users.get(d.id);
    expect(Object.keys(user?.boundHardwareFactors ?? {})).toHaveLength(9);
  });

  it('two devices drifting from one binding at once: one moves it, the other is refused', async () => {
    const d = await device(srv);
    await ask(srv, d, claim(MACHINE));
    const a = drift(MACHINE, 'disk.serial');
    const b = drift(MACHINE, 'board.serial');
    const replies = await Promise.all([ask(srv, d, claim(a)), ask(srv, d, claim(b))]);
    expect(replies.map((r) => r.status).sort()).toEqual([200, 403]);
    const winner = replies[0]?.status === 200 ? a : b;
    const user = await srv.s.server.store.users.get(d.id);
    expect(user?.boundHardwareHash).toBe(claim(winner).hardware);
    expect(user?.boundHardwareFactors).toEqual(factorDigests(winner));
    expect(events(srv, 'device.drifted').filter((l) => l.userId === d.id)).toHaveLength(1);
  });

  it.skipIf(!ON_POSTGRES)(
    'two instances on one database: devices drifting at once through each, one moves the binding',
    async () => {
      // A second server over the same data directory: the same PostgreSQL database and bucket.
      const other = await startServer({ dataDir: srv.s.dataDir, loginLimits: LIMITS });
      cleanup.push(() => other.close());
      const second = { ...srv, s: other };
      for (let round = 0; round < 3; round++) {
        const d = await device(srv);
        await ask(srv, d, claim(MACHINE));
        const a = drift(MACHINE, 'disk.serial');
        const b = drift(MACHINE, 'system.uuid');
        const replies = await Promise.all([ask(srv, d, claim(a)), ask(second, d, claim(b))]);
        expect(replies.map((r) => r.status).sort()).toEqual([200, 403]);
        const winner = replies[0]?.status === 200 ? a : b;
        const user = await other.server.store.users.get(d.id);
        expect(user?.boundHardwareHash).toBe(claim(winner).hardware);
      }
    },
  );

  it('the floor of 3: a four-factor container may lose one, a three-factor one none', async () => {
    const d = await device(srv);
    await ask(srv, d, claim(CONTAINER));
    // Another container on the same kind of host: 3 of 4 match, but none that identifies.
    expect((await ask(srv, d, claim(drift(CONTAINER, 'os.machineId')))).status).toBe(403);
    expect((await ask(srv, d, claim(drift(CONTAINER, 'memory.gib')))).status).toBe(200);
    const e = await device(srv);
    const { 'os.machineId': _m, ...three } = CONTAINER;
    await ask(srv, e, claim(three));
    expect((await ask(srv, e, claim(drift(three, 'memory.gib')))).status).toBe(403);
  });

  it('old clients (hash only) match exactly as before, on either kind of binding', async () => {
    const d = await device(srv);
    const hashOnly = { hardware: claim(MACHINE).hardware };
    expect((await ask(srv, d, hashOnly)).status).toBe(200);
    expect((await srv.s.server.store.users.get(d.id))?.boundHardwareFactors).toBeUndefined();
    expect((await ask(srv, d, hashOnly)).status).toBe(200);
    // A binding without digests accepts no drift, even from a new client.
    const moved = claim(drift(MACHINE, 'disk.serial'));
    expect((await ask(srv, d, moved)).status).toBe(403);
    expect((await ask(srv, d, { hardware: moved.hardware })).status).toBe(403);
    // The bound device upgraded: same hash, now with digests, which the binding records…
    expect((await ask(srv, d, claim(MACHINE))).status).toBe(200);
    expect((await srv.s.server.store.users.get(d.id))?.boundHardwareFactors).toEqual(
      factorDigests(MACHINE),
    );
    expect(events(srv, 'device.factorsRecorded').filter((l) => l.userId === d.id)).toHaveLength(1);
    // …and then drift is tolerated; an old client with another hash is still refused.
    expect(
      (await ask(srv, d, { hardware: claim(drift(MACHINE, 'cpu.model')).hardware })).status,
    ).toBe(403);
    expect((await ask(srv, d, moved)).status).toBe(200);
  });

  it('refuses malformed factor digests with 400 before anything is bound', async () => {
    const d = await device(srv);
    const { hardware } = claim(MACHINE);
    for (const hardwareFactors of [
      ['a'],
      { 'disk.serial': 'A'.repeat(64) },
      { 'disk.serial': 'ab' },
      { 'Disk serial': 'a'.repeat(64) },
      { 'disk.serial': 7 },
      Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`f${i}`, 'a'.repeat(64)])),
    ]) {
      const reply = await ask(srv, d, { hardware, hardwareFactors });
      expect(reply.status, JSON.stringify(hardwareFactors)).toBe(400);
    }
    expect((await srv.s.server.store.users.get(d.id))?.boundHardwareHash).toBeNull();
  });

  it('a factor named like an Object member is only a name', async () => {
    const d = await device(srv);
    const f = factorDigests(MACHINE);
    const odd = { ...f, constructor: 'c'.repeat(64) };
    expect(
      (await ask(srv, d, { hardware: claim(MACHINE).hardware, hardwareFactors: odd })).status,
    ).toBe(200);
    const { constructor: _c, ...without } = odd;
    const other = { ...without, 'cpu.model': 'd'.repeat(64) };
    // Bound n = 11: constructor missing and cpu.model changed is two → 403.
    expect((await ask(srv, d, { hardware: 'e'.repeat(64), hardwareFactors: other })).status).toBe(
      403,
    );
  });
});

describe('the binding policy', () => {
  it('the default refuses a second drift within the cooldown; reset-device clears all of it', async () => {
    const srv = await server();
    const d = await device(srv);
    await ask(srv, d, claim(MACHINE));
    expect((await ask(srv, d, claim(drift(MACHINE, 'disk.serial')))).status).toBe(200);
    const again = await ask(srv, d, claim(drift(MACHINE, 'disk.serial', 'board.serial')));
    expect(again.status).toBe(403);
    expect(again.body).toMatchObject({ code: 'ERR_DEVICE_NOT_BOUND' });
    expect((again.body as { error: string }).error).toMatch(/moved to a changed device recently/);
    const reset = await call(srv.s.url, 'POST', `/users/${d.id}/reset-device`, {
      token: srv.admin,
    });
    expect(reset.status).toBe(200);
    const user = await srv.s.server.store.users.get(d.id);
    expect(user).toMatchObject({ boundHardwareHash: null });
    expect(user?.boundHardwareFactors).toBeUndefined();
    expect(user?.deviceDriftedAt).toBeUndefined();
  });

  it('maxDrift widens the tolerance but never below minMatch; 0 tolerates no change', async () => {
    const wide = await server({ deviceBinding: { maxDrift: 3, minMatch: 8, driftCooldownMs: 0 } });
    const d = await device(wide);
    await ask(wide, d, claim(MACHINE));
    expect((await ask(wide, d, claim(drift(MACHINE, 'disk.serial', 'board.serial')))).status).toBe(
      200,
    );
    const e = await device(wide);
    await ask(wide, e, claim(MACHINE));
    const three = drift(MACHINE, 'disk.serial', 'board.serial', 'system.uuid');
    expect((await ask(wide, e, claim(three))).status).toBe(403);
    const strict = await server({ deviceBinding: { maxDrift: 0 } });
    const f = await device(strict);
    await ask(strict, f, claim(MACHINE));
    expect((await ask(strict, f, claim(drift(MACHINE, 'disk.serial')))).status).toBe(403);
  });

  it('createServer refuses a minimum below 3, naming the setting', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    const e = await createServer({ dataDir, scrypt: TEST_SCRYPT, deviceBinding: { minMatch: 2 } })
      .then(() => undefined)
      .catch((x: unknown) => x);
    expect(isSluiceError(e, 'ERR_INVALID_ARG')).toBe(true);
    expect((e as Error).message).toMatch(/deviceBinding\.minMatch must be an integer ≥ 3/);
  });
});
