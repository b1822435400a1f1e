// Offline leases through the built binary: `sluice serve` as a child process, a device pulls
// through its cache, the server stops, and `sluice pull --offline` (or a plain pull, falling
// back with one warning line) still opens the model byte for byte; an expired lease, a wrong
// password or another device are refused; with the big part on an S3 CDN (Ceph RGW) too.
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import {
  fastHashConfig,
  finished,
  listeningUrl,
  type RunResult,
  run,
  start,
  TEST_PASSWORD_HASH,
} from './test-cli.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const ADMIN = 'admin@example.com';
const ADMIN_PASSWORD = 'admin password 12345';
const UPLOADER = 'uploader@example.com';
const DEVICE = 'device@example.com';
const PASSWORD = 'correct horse battery staple';
const HW = 'f'.repeat(64);
const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-offline-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** `sluice serve` over a fresh data directory with `args`, its users created and logged in. */
async function serveWithUsers(tag: string, args: string[]) {
  const config = args.includes('--config') ? [] : ['--config', fastHashConfig(dir)];
  const serve = start(
    [
      'serve',
      ...config,
      ...args,
      '--data',
      join(dir, `data-${tag}`),
      '--port',
      '0',
      '--init-admin',
      ADMIN,
    ],
    { env: { SLUICE_ADMIN_PASSWORD: ADMIN_PASSWORD } },
  );
  const done = finished(serve);
  const url = await listeningUrl(serve);
  const as = (who: string, a: string[], env: Record<string, string> = {}, input?: string) =>
    run(a, {
      env: {
        SLUICE_CONFIG_DIR: join(dir, `config-${tag}-${who}`),
        SLUICE_HARDWARE_HASH: HW,
        ...env,
      },
      ...(input === undefined ? {} : { input }),
    });
  const ok = (r: RunResult) => expect(r.code, r.stderr).toBe(0);
  ok(
    await as('admin', ['login', '--server', url, '--email', ADMIN], {
      SLUICE_PASSWORD: ADMIN_PASSWORD,
    }),
  );
  for (const [email, role] of [
    [UPLOADER, 'ResourceUploader'],
    [DEVICE, 'Operator'],
  ] as const) {
    ok(
      await as('admin', ['user', 'create', email, '--role', role], {
        SLUICE_NEW_PASSWORD: PASSWORD,
      }),
    );
  }
  ok(
    await as('uploader', ['login', '--server', url, '--email', UPLOADER], {
      SLUICE_PASSWORD: PASSWORD,
    }),
  );
  ok(
    await as('device', ['login', '--server', url, '--email', DEVICE], {
      SLUICE_PASSWORD: PASSWORD,
    }),
  );
  const stop = async () => {
    if (serve.exitCode === null && serve.signalCode === null) serve.kill('SIGTERM');
    await done;
  };
  return { serve: serve as ChildProcess, url, as, ok, stop };
}

describe('sluice pull --offline against `sluice serve` (embedded store)', () => {
  it('opens the cached model with the server stopped; falls back with one warning; refuses what it must', async () => {
    const s = await serveWithUsers('file', []);
    try {
      const model = join(dir, 'model.bin');
      const plain = randomBytes(2 * 1024 * 1024 + 11);
      writeFileSync(model, plain);
      s.ok(
        await s.as('uploader', ['push', model, 'models', '--name', 'm.bin'], {
          SLUICE_PASSWORD: PASSWORD,
        }),
      );
      const cache = join(dir, 'cache-file');
      const pw = { SLUICE_PASSWORD: PASSWORD };
      const first = await s.as(
        'device',
        ['pull', 'models', 'm.bin', '--cache', cache, '-o', join(dir, 'online.bin'), '--json'],
        pw,
      );
      s.ok(first);
      const report = JSON.parse(first.stdout) as { offline: boolean; leaseNotAfter: string };
      expect(report.offline).toBe(false);
      expect(Date.parse(report.leaseNotAfter) - Date.now()).toBeGreaterThan(6.9 * 86400_000);
      await s.stop();

      const out = join(dir, 'offline.bin');
      const off = await s.as(
        'device',
        ['pull', 'models', 'm.bin', '--cache', cache, '--offline', '-o', out],
        pw,
      );
      s.ok(off);
      expect(sha(readFileSync(out))).toBe(sha(plain));
      expect(off.stderr).toContain('opened offline from its lease (valid until ');
      expect(off.stderr).not.toContain('warning');

      // No --offline: the server does not answer, so the pull says so once and uses the lease.
      const auto = await s.as(
        'device',
        ['pull', 'models', 'm.bin', '--cache', cache, '-o', join(dir, 'auto.bin')],
        pw,
      );
      s.ok(auto);
      expect(sha(readFileSync(join(dir, 'auto.bin')))).toBe(sha(plain));
      expect(auto.stderr.match(/warning: /g)).toHaveLength(1);
      expect(auto.stderr).toContain(
        `warning: cannot reach the sluice server at ${new URL(s.url).href}: connection refused;`,
      );
      expect(auto.stderr).not.toContain('.well-known');
      expect(auto.stderr).toContain('; opening models/m.bin from its offline lease\n');

      const wrong = await s.as(
        'device',
        ['pull', 'models', 'm.bin', '--cache', cache, '--offline', '-o', join(dir, 'x')],
        { SLUICE_PASSWORD: 'not the password at all' },
      );
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toContain('ERR_LEASE_LOCKED');
      expect(wrong.stderr).not.toContain('not the password at all');
      const other = await s.as(
        'device',
        ['pull', 'models', 'm.bin', '--cache', cache, '--offline', '-o', join(dir, 'x')],
        { ...pw, SLUICE_HARDWARE_HASH: 'e'.repeat(64) },
      );
      expect(other.code).toBe(1);
      expect(other.stderr).toContain('ERR_LEASE_LOCKED');
      const never = await s.as(
        'device',
        ['pull', 'models', 'other.bin', '--cache', cache, '--offline', '-o', join(dir, 'x')],
        pw,
      );
      expect(never.code).toBe(1);
      expect(never.stderr).toContain('ERR_NO_LEASE');
      expect(existsSync(join(dir, 'x'))).toBe(false);
    } finally {
      await s.stop();
    }
  });

  it('a short lease (--lease-days) is refused once past, with ERR_LEASE_EXPIRED', async () => {
    // A 15-minute lease (0.0105 days); the last pull runs on a clock moved past its end, by a
    // preload, so a slow machine cannot run it out early.
    const s = await serveWithUsers('short', ['--lease-days', '0.0105']);
    try {
      const model = join(dir, 'short.bin');
      writeFileSync(model, randomBytes(300_000));
      s.ok(
        await s.as('uploader', ['push', model, 'models', '--name', 's.bin'], {
          SLUICE_PASSWORD: PASSWORD,
        }),
      );
      const cache = join(dir, 'cache-short');
      const pw = { SLUICE_PASSWORD: PASSWORD };
      const first = await s.as(
        'device',
        ['pull', 'models', 's.bin', '--cache', cache, '-o', join(dir, 's1'), '--json'],
        pw,
      );
      s.ok(first);
      const { leaseNotAfter } = JSON.parse(first.stdout) as { leaseNotAfter: string };
      await s.stop();
      s.ok(
        await s.as(
          'device',
          ['pull', 'models', 's.bin', '--cache', cache, '--offline', '-o', join(dir, 's2')],
          pw,
        ),
      );
      const left = Date.parse(leaseNotAfter) - Date.now();
      expect(left).toBeGreaterThan(10 * 60_000);
      expect(left).toBeLessThanOrEqual(0.0105 * 86_400_000);
      const late = await s.as(
        'device',
        ['pull', 'models', 's.bin', '--cache', cache, '--offline', '-o', join(dir, 's3')],
        { ...pw, NODE_OPTIONS: `--import ${aheadClock(left + 60_000)}` },
      );
      expect(late.code).toBe(1);
      expect(late.stderr).toContain('ERR_LEASE_EXPIRED');
      expect(existsSync(join(dir, 's3'))).toBe(false);
    } finally {
      await s.stop();
    }
  });

  it('sluice login is a contact too: a lease revoked by a device reset is deleted from the default cache', async () => {
    const s = await serveWithUsers('login', []);
    try {
      const model = join(dir, 'login.bin');
      writeFileSync(model, randomBytes(200_000));
      const pw = { SLUICE_PASSWORD: PASSWORD, XDG_CACHE_HOME: join(dir, 'xdg-cache') };
      s.ok(await s.as('uploader', ['push', model, 'models', '--name', 'l.bin'], pw));
      s.ok(
        await s.as('device', ['pull', 'models', 'l.bin', '--use-cache', '-o', join(dir, 'l1')], pw),
      );
      const keep = await s.as('device', ['login', '--server', s.url, '--email', DEVICE], pw);
      s.ok(keep);
      expect(keep.stderr).not.toContain('revoked');
      s.ok(
        await s.as('admin', ['user', 'reset-device', DEVICE], { SLUICE_PASSWORD: ADMIN_PASSWORD }),
      );
      const login = await s.as('device', ['login', '--server', s.url, '--email', DEVICE], pw);
      s.ok(login);
      expect(login.stderr).toContain('deleted 1 revoked offline lease(s)');
      const off = await s.as(
        'device',
        ['pull', 'models', 'l.bin', '--offline', '-o', join(dir, 'l2')],
        pw,
      );
      expect(off.code).toBe(1);
      expect(off.stderr).toContain('ERR_NO_LEASE');
    } finally {
      await s.stop();
    }
  });

  it('--lease-days takes a number of days', async () => {
    const r = await run([
      'serve',
      '--data',
      join(dir, 'bad'),
      '--port',
      '0',
      '--lease-days',
      'a week',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--lease-days must be a number of days');
  });
});

const env = process.env;
const s3 = env.SLUICE_TEST_S3_ENDPOINT
  ? {
      endpoint: env.SLUICE_TEST_S3_ENDPOINT,
      region: env.SLUICE_TEST_S3_REGION || 'us-east-1',
      rw: {
        accessKeyId: env.SLUICE_TEST_S3_ACCESS_KEY ?? '',
        secretAccessKey: env.SLUICE_TEST_S3_SECRET_KEY ?? '',
      },
      read: {
        accessKeyId: env.SLUICE_TEST_S3_READ_ACCESS_KEY || (env.SLUICE_TEST_S3_ACCESS_KEY ?? ''),
        secretAccessKey:
          env.SLUICE_TEST_S3_READ_SECRET_KEY || (env.SLUICE_TEST_S3_SECRET_KEY ?? ''),
      },
    }
  : undefined;
if (!s3 && env.CI === 'true') throw new Error('CI=true but SLUICE_TEST_S3_ENDPOINT is not set');

describe.skipIf(!s3)('sluice pull --offline with the big part from an S3 CDN (Ceph RGW)', () => {
  it('pulls through the cache from the CDN, then opens it offline with the server stopped', async () => {
    if (!s3) throw new Error('no S3');
    const client = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: s3.rw,
    });
    const tag = randomBytes(4).toString('hex');
    const [storeBucket, cdnBucket] = [`sluice-lease-store-${tag}`, `sluice-lease-cdn-${tag}`];
    await client.send(new CreateBucketCommand({ Bucket: cdnBucket }));
    const config = join(dir, 's3.json');
    writeFileSync(
      config,
      JSON.stringify({
        storage: {
          kind: 's3',
          endpoint: s3.endpoint,
          region: s3.region,
          bucket: storeBucket,
          credentials: s3.rw,
        },
        cdn: {
          kind: 's3',
          endpoint: s3.endpoint,
          region: s3.region,
          bucket: cdnBucket,
          chunkSize: 1024 * 1024,
          downloader: s3.read,
          uploader: s3.rw,
        },
        passwordHash: TEST_PASSWORD_HASH,
      }),
    );
    chmodSync(config, 0o600);
    const s = await serveWithUsers('s3', ['--config', config]);
    try {
      const model = join(dir, 's3model.bin');
      const plain = randomBytes(3 * 1024 * 1024 + 5);
      writeFileSync(model, plain);
      s.ok(
        await s.as('uploader', ['push', model, 'models', '--name', 'cdn.bin'], {
          SLUICE_PASSWORD: PASSWORD,
        }),
      );
      const listed = await client.send(new ListObjectsV2Command({ Bucket: cdnBucket }));
      expect(listed.Contents?.length).toBe(1);
      const cache = join(dir, 'cache-s3');
      const pw = { SLUICE_PASSWORD: PASSWORD };
      s.ok(
        await s.as(
          'device',
          ['pull', 'models', 'cdn.bin', '--cache', cache, '-o', join(dir, 'c1')],
          pw,
        ),
      );
      await s.stop();
      const off = await s.as(
        'device',
        [
          'pull',
          'models',
          'cdn.bin',
          '--cache',
          cache,
          '--offline',
          '-o',
          join(dir, 'c2'),
          '--json',
        ],
        pw,
      );
      s.ok(off);
      expect(JSON.parse(off.stdout)).toMatchObject({ offline: true, fromCache: true });
      expect(sha(readFileSync(join(dir, 'c2')))).toBe(sha(plain));
    } finally {
      await s.stop();
      for (const bucket of [cdnBucket, storeBucket]) {
        const objects = await client
          .send(new ListObjectsV2Command({ Bucket: bucket }))
          .catch(() => undefined);
        for (const o of objects?.Contents ?? [])
          await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }));
        await client.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
      }
      client.destroy();
    }
  });
});

/** A preload file that runs a process on a clock `ms` ahead of the machine's. */
function aheadClock(ms: number): string {
  const file = join(dir, `ahead-${ms}.mjs`);
  writeFileSync(
    file,
    `const R = Date; const now = R.now.bind(R);
class D extends R { constructor(...a) { if (a.length === 0) super(now() + ${ms}); else super(...a); }
  static now() { return now() + ${ms}; } }
globalThis.Date = D;
`,
  );
  return file;
}
