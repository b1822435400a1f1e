import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BLOBS_DIR } from '../stores/blobStore.js';
import {
  call,
  ON_POSTGRES,
  type Running,
  removeDir,
  runCleanup,
  s3TestEnv,
  startServer,
  tempDir,
  uniqueBucket,
} from '../test-helpers.js';
import { adminClient, deleteBucket } from '../test-s3.js';
import type { ReadinessCheck } from './readiness.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(() => runCleanup(cleanup));

/** A server whose JSON log lines are kept in `lines`. */
async function start(options: Parameters<typeof startServer>[0] = {}) {
  const lines: string[] = [];
  const s = await startServer({
    logger: { level: 'info', stream: { write: (line: string) => lines.push(line) } },
    ...options,
  });
  cleanup.push(async () => {
    await s.close();
    await removeDir(s.dataDir);
  });
  const events = (name: string) =>
    lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === name);
  return { s, lines, events };
}

const readyz = (s: Running) => call(s.url, 'GET', '/readyz');

describe('GET /healthz', () => {
  it('answers 200 without a token, with a tiny body that is not cached', async () => {
    const { s } = await start();
    const r = await call(s.url, 'GET', '/healthz');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ok' });
    expect(r.text.length).toBeLessThan(32);
    expect(r.headers.get('cache-control')).toBe('no-store');
  });
});

describe('GET /readyz', () => {
  it('is 200 with the storage check passing; balancer polls stay out of the log', async () => {
    const { s, lines } = await start();
    for (let i = 0; i < 3; i++) {
      const r = await readyz(s);
      expect(r.status).toBe(200);
      expect(r.body).toEqual({
        ready: true,
        draining: false,
        checks: { storage: 'ok', database: 'ok' },
      });
    }
    await call(s.url, 'GET', '/healthz');
    expect(lines.join('')).not.toContain('/readyz');
    expect(lines.join('')).not.toContain('/healthz');
  });

  // Looks into the data directory's own files (blobs, database): the embedded backend's.
  it.skipIf(ON_POSTGRES)(
    'is 503 naming storage while the blob directory is gone, and 200 again once it is back',
    async () => {
      const { s, events } = await start();
      const blobs = join(s.dataDir, BLOBS_DIR);
      expect((await readyz(s)).status).toBe(200);
      await rename(blobs, `${blobs}.away`);
      for (let i = 0; i < 2; i++) {
        const r = await readyz(s);
        expect(r.status).toBe(503);
        expect(r.body).toEqual({
          ready: false,
          draining: false,
          checks: { storage: 'failed', database: 'ok' },
        });
        expect(r.text).not.toContain(s.dataDir);
      }
      // Logged once for the change, with the cause, not once per poll.
      const failed = events('readiness.failed');
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ check: 'storage', outcome: 'failed' });
      expect(String(failed[0]?.reason)).toContain('ENOENT');
      await rename(`${blobs}.away`, blobs);
      expect((await readyz(s)).status).toBe(200);
      expect(events('readiness.recovered')).toMatchObject([{ check: 'storage' }]);
    },
  );

  // Looks into the data directory's own files (blobs, database): the embedded backend's.
  it.skipIf(ON_POSTGRES)(
    'is 503 when the blob directory is a file or its temp area is missing',
    async () => {
      const { s } = await start();
      const blobs = join(s.dataDir, BLOBS_DIR);
      await rm(join(blobs, '.tmp'), { recursive: true });
      expect((await readyz(s)).status).toBe(503);
      await mkdir(join(blobs, '.tmp'), { mode: 0o700 });
      expect((await readyz(s)).status).toBe(200);
      await rm(blobs, { recursive: true });
      await writeFile(blobs, 'not a directory');
      expect((await readyz(s)).body).toMatchObject({ ready: false, checks: { storage: 'failed' } });
      await rm(blobs);
      await mkdir(join(blobs, '.tmp'), { recursive: true, mode: 0o700 });
    },
  );

  // root may read and write anything: there the permission bits cannot make it fail.
  it.skipIf(process.getuid?.() === 0)('is 503 when the blob directory is unreadable', async () => {
    const { s } = await start();
    const blobs = join(s.dataDir, BLOBS_DIR);
    await chmod(blobs, 0);
    cleanup.push(() => chmod(blobs, 0o700));
    expect((await readyz(s)).status).toBe(503);
  });

  it('names a failing extra check, never its error (a connection string with a password)', async () => {
    const secret = 'pg-password-that-must-not-leak';
    let up = true;
    const database: ReadinessCheck = {
      name: 'ledger',
      check: async () => {
        if (!up) throw new Error(`connect ECONNREFUSED postgres://sluice:${secret}@db:5432/sluice`);
      },
    };
    const { s, lines, events } = await start({ readinessChecks: [database] });
    expect((await readyz(s)).body).toEqual({
      ready: true,
      draining: false,
      checks: { storage: 'ok', database: 'ok', ledger: 'ok' },
    });
    up = false;
    const r = await readyz(s);
    expect(r.status).toBe(503);
    expect(r.body).toEqual({
      ready: false,
      draining: false,
      checks: { storage: 'ok', database: 'ok', ledger: 'failed' },
    });
    expect(r.text).not.toContain(secret);
    expect(r.text).not.toContain('postgres://');
    expect(events('readiness.failed')).toMatchObject([{ check: 'ledger' }]);
    expect(String(events('readiness.failed')[0]?.reason)).toContain('ECONNREFUSED');
    expect(lines.join('')).not.toContain(secret);
  });

  it('counts a check that does not answer within its timeout as failed, and aborts it', async () => {
    let signal: AbortSignal | undefined;
    const hang: ReadinessCheck = {
      name: 'slow-db',
      timeoutMs: 150,
      check: (s) => {
        signal = s;
        return new Promise(() => {});
      },
    };
    const { s } = await start({ readinessChecks: [hang] });
    const t0 = performance.now();
    const r = await readyz(s);
    expect(performance.now() - t0).toBeLessThan(1500);
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ checks: { storage: 'ok', 'slow-db': 'timeout' } });
    expect(signal?.aborted).toBe(true);
  });

  it('runs the checks once for concurrent polls', async () => {
    let runs = 0;
    const counted: ReadinessCheck = {
      name: 'counted',
      check: async () => {
        runs++;
        await new Promise((r) => setTimeout(r, 100));
      },
    };
    const { s } = await start({ readinessChecks: [counted] });
    const answers = await Promise.all(Array.from({ length: 5 }, () => readyz(s)));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(runs).toBe(1);
  });

  it('refuses bad extra checks before opening anything, naming the field', async () => {
    const dataDir = await tempDir();
    cleanup.push(() => removeDir(dataDir));
    const ok = async () => {};
    for (const readinessChecks of [
      [{ name: 'storage', check: ok }],
      [{ name: 'Database URL', check: ok }],
      [
        { name: 'db', check: ok },
        { name: 'db', check: ok },
      ],
      [{ name: 'db', check: ok, timeoutMs: 0 }],
    ]) {
      const e = await startServer({ dataDir, readinessChecks }).then(
        (started) => started.close().then(() => undefined),
        (err: unknown) => err,
      );
      expect(e).toMatchObject({ code: 'ERR_INVALID_ARG', field: 'readinessChecks' });
    }
  });
});

const env = s3TestEnv();
describe.skipIf(!env)('GET /readyz with S3 storage', () => {
  const admin = env ? adminClient(env) : undefined;
  afterAll(() => admin?.destroy());

  it('is 200 while the bucket answers, 503 naming storage once it is gone', async () => {
    if (!env || !admin) throw new Error('S3 tests run only with SLUICE_TEST_S3_* set');
    const bucket = uniqueBucket('sluice-readyz');
    cleanup.push(() => deleteBucket(admin, bucket));
    const credentials = { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey };
    const storage = { kind: 's3' as const, endpoint: env.endpoint, region: env.region, bucket };
    const { s, lines } = await start({ storage: { ...storage, credentials } });
    expect((await readyz(s)).body).toEqual({
      ready: true,
      draining: false,
      checks: { storage: 'ok', database: 'ok' },
    });
    await deleteBucket(admin, bucket);
    const r = await readyz(s);
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ checks: { storage: 'failed' } });
    expect(r.text).not.toContain(env.endpoint);
    expect(r.text).not.toContain(bucket);
    expect(lines.join('')).toContain(bucket);
    expect(lines.join('')).not.toContain(env.secretAccessKey);
  });
});
