import { isSluiceError } from '@sluice/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { checkTrustProxy } from '../app/trustProxy.js';
import { Store } from '../stores/store.js';
import { removeDir, tempDir } from '../test-helpers.js';
import { freshDatabase, postgresTestEnv } from '../test-postgres.js';
import { type LimiterState, MemoryLimiterState, StoreLimiterState } from './limiterState.js';
import { LoginLimiter, type PasswordAttempt, resolveLoginLimits } from './loginLimiter.js';

const pg = postgresTestEnv();
const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step();
});

/** A store of its own per limiter: the embedded one, or a fresh PostgreSQL database. */
async function storeState(databaseUrl?: string): Promise<LimiterState> {
  const dataDir = await tempDir();
  const db = databaseUrl === undefined ? undefined : await freshDatabase();
  const store = await Store.open({ dataDir, databaseUrl: db?.url });
  cleanup.push(async () => {
    await store.close();
    await db?.drop();
    await removeDir(dataDir);
  });
  return new StoreLimiterState(store);
}

const STATES: { name: string; skip: boolean; state: () => Promise<LimiterState> }[] = [
  { name: 'memory', skip: false, state: async () => new MemoryLimiterState() },
  { name: 'the embedded store', skip: false, state: () => storeState() },
  { name: 'PostgreSQL', skip: pg.url === undefined, state: () => storeState(pg.url) },
];

const A = '192.0.2.1';
const B = '192.0.2.2';
const T0 = 1_000_000_000_000;
const s = (seconds: number) => T0 + seconds * 1000;

function attempt(r: number | PasswordAttempt): PasswordAttempt {
  if (typeof r === 'number') throw new Error(`refused for ${r} s`);
  return r;
}

describe.each(STATES)('LoginLimiter over $name', ({ state, skip }) => {
  const make = async (limits: Parameters<typeof resolveLoginLimits>[0]): Promise<LoginLimiter> =>
    new LoginLimiter(limits, await state());
  it.skipIf(skip)(
    'per client: locks after the limit, doubles the lock per further failure, caps it, forgets later',
    async () => {
      const l = await make({
        perClient: { limit: 3, lockSeconds: 10, maxLockSeconds: 40, forgetSeconds: 100 },
      });
      for (let i = 0; i < 3; i++) attempt(await l.admitLogin('x@example.test', A, s(0)));
      expect(await l.admitLogin('x@example.test', A, s(1))).toBe(9);
      // Another address and another account are not affected.
      attempt(await l.admitLogin('x@example.test', B, s(1)));
      attempt(await l.admitLogin('y@example.test', A, s(1)));
      attempt(await l.admitLogin('x@example.test', A, s(10))); // 4th failure: 20 s
      expect(await l.admitLogin('x@example.test', A, s(11))).toBe(19);
      attempt(await l.admitLogin('x@example.test', A, s(30))); // 5th: 40 s
      expect(await l.admitLogin('x@example.test', A, s(31))).toBe(39);
      attempt(await l.admitLogin('x@example.test', A, s(70))); // 6th: capped at 40 s
      expect(await l.admitLogin('x@example.test', A, s(71))).toBe(39);
      // 100 s after the last failure (and unlocked), the count starts over.
      for (let i = 0; i < 2; i++) attempt(await l.admitLogin('x@example.test', A, s(171)));
      attempt(await l.admitLogin('x@example.test', A, s(171)));
      expect(await l.admitLogin('x@example.test', A, s(172))).toBe(9);
    },
  );

  it.skipIf(skip)(
    'counts an attempt before its outcome (parallel guesses cannot pass the limit); a success takes it back',
    async () => {
      const l = await make({
        perClient: { limit: 2, lockSeconds: 60, maxLockSeconds: 60, forgetSeconds: 60 },
      });
      const first = attempt(await l.admitLogin('x@example.test', A, s(0)));
      attempt(await l.admitLogin('x@example.test', A, s(0)));
      expect(await l.admitLogin('x@example.test', A, s(0))).toBe(60);
      await first.succeeded();
      attempt(await l.admitLogin('x@example.test', A, s(0)));
    },
  );

  it.skipIf(skip)('per address: only attempts that did not succeed use the budget', async () => {
    const l = await make({ perAddress: { limit: 3, windowSeconds: 60 } });
    for (let i = 0; i < 10; i++)
      await attempt(await l.admitLogin(`ok${i}@example.test`, A, s(0))).succeeded();
    for (let i = 0; i < 3; i++) attempt(await l.admitLogin(`bad${i}@example.test`, A, s(0)));
    expect(await l.admitLogin('ok0@example.test', A, s(1))).toBe(59);
    attempt(await l.admitLogin('ok0@example.test', B, s(1)));
    attempt(await l.admitLogin('ok0@example.test', A, s(60)));
  });

  it.skipIf(skip)(
    'per account: past the ceiling new addresses are spaced out, refilled over time; known ones pass',
    async () => {
      const l = await make({ perAccount: { limit: 4, windowSeconds: 40 } });
      await attempt(await l.admitLogin('x@example.test', A, s(0))).succeeded(); // A is now known
      for (let i = 0; i < 4; i++)
        attempt(await l.admitLogin('x@example.test', `198.51.100.${i}`, s(0)));
      // One token per 10 s: the next new address waits at most that long.
      expect(await l.admitLogin('x@example.test', B, s(0))).toBe(10);
      expect(await l.admitLogin('x@example.test', B, s(7))).toBe(3);
      attempt(await l.admitLogin('x@example.test', A, s(7)));
      attempt(await l.admitLogin('x@example.test', B, s(10)));
      expect(await l.admitLogin('x@example.test', B, s(10))).toBe(10);
      // Other accounts have buckets of their own.
      attempt(await l.admitLogin('y@example.test', B, s(10)));
    },
  );

  it.skipIf(skip)(
    'token passwords: a budget per (user, address) of their own, cleared by a right password',
    async () => {
      const l = await make({
        perClient: { limit: 1, lockSeconds: 60, maxLockSeconds: 60, forgetSeconds: 60 },
        withToken: { limit: 2, lockSeconds: 30, maxLockSeconds: 60, forgetSeconds: 60 },
      });
      attempt(await l.admitLogin('x@example.test', A, s(0)));
      expect(await l.admitLogin('x@example.test', A, s(0))).toBe(60);
      attempt(await l.admitTokenPassword('user-1', A, s(0)));
      attempt(await l.admitTokenPassword('user-1', A, s(0)));
      expect(await l.admitTokenPassword('user-1', A, s(1))).toBe(29);
      expect(await l.tokenPasswordStanding('user-1', A, s(1))).toEqual({
        wait: 29,
        failures: true,
      });
      const clean = await l.tokenPasswordStanding('user-1', B, s(1));
      expect(clean).toEqual({ wait: undefined, failures: false });
      // A standing that saw no failures clears nothing (and reads nothing).
      await l.tokenPasswordOk('user-1', A, clean);
      expect((await l.tokenPasswordStanding('user-1', A, s(1))).failures).toBe(true);
      await l.tokenPasswordOk('user-1', A);
      expect(await l.tokenPasswordStanding('user-1', A, s(1))).toEqual({
        wait: undefined,
        failures: false,
      });
    },
  );

  it.skipIf(skip)('refuses rules that are not positive numbers, naming the field', async () => {
    const bad = [
      { perClient: { limit: 0, lockSeconds: 1, maxLockSeconds: 1, forgetSeconds: 1 } },
      { perAddress: { limit: 1.5, windowSeconds: 60 } },
      { perAccount: { limit: 10, windowSeconds: -1 } },
      { withToken: { limit: 3, lockSeconds: Number.NaN, maxLockSeconds: 1, forgetSeconds: 1 } },
    ];
    const fields = bad.map((limits) => {
      try {
        resolveLoginLimits(limits);
        return 'accepted';
      } catch (e) {
        return isSluiceError(e, 'ERR_INVALID_ARG') ? e.field : String(e);
      }
    });
    expect(fields).toEqual([
      'loginLimits.perClient.limit',
      'loginLimits.perAddress.limit',
      'loginLimits.perAccount.windowSeconds',
      'loginLimits.withToken.lockSeconds',
    ]);
  });
});

describe('checkTrustProxy', () => {
  it('accepts booleans, addresses, CIDRs and range names, as a comma list or an array', () => {
    for (const v of [
      true,
      false,
      '127.0.0.1',
      '10.0.0.0/8, 192.168.1.1',
      ['loopback', 'fd00::/8', '::1'],
    ]) {
      expect(checkTrustProxy(v)).toEqual(v);
    }
  });

  it('refuses anything else with ERR_INVALID_ARG naming trustProxy', () => {
    for (const v of ['', 'yes', '10.0.0.0/33', '1.2.3.4/8/9', ['127.0.0.1', 7], [], 2, null, {}]) {
      let caught: unknown;
      try {
        checkTrustProxy(v);
      } catch (e) {
        caught = e;
      }
      expect(isSluiceError(caught, 'ERR_INVALID_ARG'), JSON.stringify(v)).toBe(true);
      expect((caught as { field?: string }).field).toBe('trustProxy');
    }
  });
});

describe.skipIf(pg.url === undefined)('LoginLimiter over one PostgreSQL database', () => {
  it('two instances share the counts: failures on one lock the pair on the other', async () => {
    const db = await freshDatabase();
    const dirs = [await tempDir(), await tempDir()];
    const stores = await Promise.all(
      dirs.map((dataDir) => Store.open({ dataDir, databaseUrl: db.url })),
    );
    cleanup.push(async () => {
      for (const st of stores) await st.close();
      await db.drop();
      for (const d of dirs) await removeDir(d);
    });
    const rule = {
      perClient: { limit: 4, lockSeconds: 60, maxLockSeconds: 60, forgetSeconds: 60 },
    };
    const [one, two] = stores.map((st) => new LoginLimiter(rule, new StoreLimiterState(st)));
    if (one === undefined || two === undefined) throw new Error('two limiters');
    // Parallel guesses spread over both instances: exactly the limit gets through.
    const tries = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        (i % 2 === 0 ? one : two).admitLogin('x@example.test', A, s(0)),
      ),
    );
    expect(tries.filter((t) => typeof t !== 'number')).toHaveLength(4);
    expect(await one.admitLogin('x@example.test', A, s(1))).toBe(59);
    expect(await two.admitLogin('x@example.test', A, s(1))).toBe(59);
  });
});
