// `sluice serve` with its small parts in one bucket and its big parts on an S3 CDN (another
// bucket) of a real Ceph RGW, and `push`/`pull`/`doctor` as the built binary against it.
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  finished,
  listeningUrl,
  type RunResult,
  run,
  runOnTty,
  skipTty,
  start,
  TEST_PASSWORD_HASH,
} from './test-cli.js';
import { startProxy } from './test-proxy.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
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
if (!s3) {
  if (env.CI === 'true') throw new Error('CI=true but SLUICE_TEST_S3_ENDPOINT is not set');
  console.warn(
    'cli S3 tests skipped: set SLUICE_TEST_S3_* (eval "$(node scripts/ceph/ceph.mjs start --dir /tmp/sluice-ceph)")',
  );
}

const ADMIN = 'admin@example.com';
const ADMIN_PASSWORD = 'admin password 12345';
const UPLOADER = 'uploader@example.com';
const DEVICE = 'device@example.com';
const PASSWORD = 'correct horse battery staple';
const HW_UPLOADER = 'c'.repeat(64);
const HW_DEVICE = 'd'.repeat(64);
const MiB = 1024 * 1024;

const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-s3-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const client = s3
  ? new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: s3.rw,
    })
  : undefined;
/** Every bucket a test may have made, emptied and dropped at the end. */
const buckets = new Set<string>();
afterAll(async () => {
  if (!client) return;
  for (const bucket of buckets) {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket })).catch(() => {
      return undefined;
    });
    for (const o of listed?.Contents ?? []) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }));
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
  }
  client.destroy();
});

function bucketName(role: string): string {
  const name = `sluice-cli-${role}-${randomBytes(4).toString('hex')}`;
  buckets.add(name);
  return name;
}

async function objects(bucket: string): Promise<{ key: string; size: number }[]> {
  if (!client) throw new Error('no S3');
  const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (listed.Contents ?? []).map((o) => ({ key: o.Key ?? '', size: o.Size ?? -1 }));
}

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const configOf = (who: string) => join(dir, `config-${who}`);
function as(who: string, args: string[], extra: Record<string, string> = {}, input?: string) {
  return run(args, {
    env: { SLUICE_CONFIG_DIR: configOf(who), ...extra },
    ...(input === undefined ? {} : { input }),
  });
}

/** The secrets that must never appear in anything the CLI prints. */
const secrets = () => (s3 ? [s3.rw.secretAccessKey, s3.read.secretAccessKey] : []);
function expectNoSecret(text: string): void {
  for (const secret of secrets()) expect(text).not.toContain(secret);
}

describe.skipIf(!s3)('sluice serve --config with S3 storage and an S3 CDN (Ceph RGW)', () => {
  const storeBucket = bucketName('store');
  const cdnBucket = bucketName('cdn');
  const dataDir = join(dir, 'data');
  let serve: ChildProcess;
  let serveDone: Promise<RunResult>;
  let serveErr = '';
  let url: string;

  beforeAll(async () => {
    if (!s3 || !client) throw new Error('no S3');
    // The CDN bucket is the operator's (the server only creates its own storage bucket).
    await client.send(new CreateBucketCommand({ Bucket: cdnBucket }));
    const config = join(dir, 'sluice.json');
    writeFileSync(
      config,
      JSON.stringify({
        storage: {
          kind: 's3',
          endpoint: s3.endpoint,
          region: s3.region,
          bucket: storeBucket,
          prefix: 'parts',
          credentials: s3.rw,
        },
        cdn: {
          kind: 's3',
          endpoint: s3.endpoint,
          region: s3.region,
          bucket: cdnBucket,
          prefix: 'models-cdn',
          chunkSize: MiB,
          downloader: s3.read,
          uploader: s3.rw,
        },
        passwordHash: TEST_PASSWORD_HASH,
      }),
    );
    chmodSync(config, 0o600);
    serve = start(
      ['serve', '--config', config, '--data', dataDir, '--port', '0', '--init-admin', ADMIN],
      { env: { SLUICE_ADMIN_PASSWORD: ADMIN_PASSWORD } },
    );
    serve.stderr?.on('data', (d: Buffer | string) => {
      serveErr += String(d);
    });
    serveDone = finished(serve);
    url = await listeningUrl(serve);
  });
  afterAll(async () => {
    if (serve && serve.exitCode === null && serve.signalCode === null) {
      serve.kill('SIGKILL');
      await serveDone;
    }
  });

  it('says on stderr where small and big parts go: endpoint and bucket, never a key', () => {
    expect(serveErr).toContain(
      `small parts: S3 ${s3?.endpoint} bucket ${storeBucket} prefix parts/`,
    );
    expect(serveErr).toContain(
      `big parts:   S3 CDN ${s3?.endpoint} bucket ${cdnBucket} prefix models-cdn/`,
    );
    expectNoSecret(serveErr);
  });

  const model = join(dir, 'model.bin');

  it('push (uploader, password from stdin) → pull (device): same SHA-256; the buckets hold the parts', async () => {
    const admin = await as('admin', ['login', '--server', url, '--email', ADMIN], {
      SLUICE_PASSWORD: ADMIN_PASSWORD,
    });
    expect(admin.code, admin.stderr).toBe(0);
    for (const [email, role] of [
      [UPLOADER, 'ResourceUploader'],
      [DEVICE, 'Operator'],
    ] as const) {
      const r = await as('admin', ['user', 'create', email, '--role', role], {
        SLUICE_NEW_PASSWORD: PASSWORD,
      });
      expect(r.code, r.stderr).toBe(0);
    }
    for (const who of ['uploader', 'device']) {
      const email = who === 'uploader' ? UPLOADER : DEVICE;
      const r = await as(who, ['login', '--server', url, '--email', email], {
        SLUICE_PASSWORD: PASSWORD,
      });
      expect(r.code, r.stderr).toBe(0);
    }

    writeFileSync(model, randomBytes(3 * MiB + 7));
    // The write keys need the password: without one (no TTY, no env) push stops before uploading.
    const noPassword = await as('uploader', ['push', model, 'models', '--name', 'm1'], {
      SLUICE_HARDWARE_HASH: HW_UPLOADER,
    });
    expect(noPassword.code).toBe(2);
    expect(noPassword.stderr).toContain('SLUICE_PASSWORD');
    expect(await objects(cdnBucket)).toEqual([]);

    const push = await as(
      'uploader',
      ['push', model, 'models', '--name', 'm1', '--json', '--password-stdin'],
      { SLUICE_HARDWARE_HASH: HW_UPLOADER },
      `${PASSWORD}\n`,
    );
    expect(push.code, push.stderr).toBe(0);
    expect(JSON.parse(push.stdout)).toMatchObject({ folder: 'models', name: 'm1', version: 1 });
    expectNoSecret(push.stdout + push.stderr);

    const listed = JSON.parse((await as('device', ['ls', 'models', '--json'])).stdout);
    const [entry] = listed.resources;
    expect(entry).toMatchObject({ name: 'm1', bigStored: false });
    // The big part is on the CDN under its prefix, the small part in the server's own bucket.
    const onCdn = await objects(cdnBucket);
    expect(onCdn).toHaveLength(1);
    expect(onCdn[0]?.key).toMatch(/^models-cdn\/models\/m1\/[0-9a-f]{32}\.big$/);
    expect(onCdn[0]?.size).toBe(entry.bigSize);
    const stored = await objects(storeBucket);
    expect(stored).toEqual([
      { key: expect.stringMatching(/^parts\/[0-9a-f]{32}$/), size: entry.smallSize },
    ]);

    const out = join(dir, 'pulled.bin');
    const pull = await as('device', ['pull', 'models', 'm1', '-o', out, '--json', '--sha256'], {
      SLUICE_PASSWORD: PASSWORD,
      SLUICE_HARDWARE_HASH: HW_DEVICE,
    });
    expect(pull.code, pull.stderr).toBe(0);
    expect(JSON.parse(pull.stdout)).toMatchObject({ size: 3 * MiB + 7, sha256: sha(model) });
    expect(sha(out)).toBe(sha(model));
    expectNoSecret(pull.stdout + pull.stderr);
  });

  it('behind HTTP_PROXY the device reaches the API and the S3 CDN through the proxy', async () => {
    const proxy = await startProxy();
    try {
      const out = join(dir, 'pulled-via-proxy.bin');
      const pull = await as('device', ['pull', 'models', 'm1', '-o', out], {
        SLUICE_PASSWORD: PASSWORD,
        SLUICE_HARDWARE_HASH: HW_DEVICE,
        HTTP_PROXY: proxy.url,
      });
      expect(pull.code, pull.stderr).toBe(0);
      expect(sha(out)).toBe(sha(model));
      expect(proxy.seen).toContain(`POST ${url}/resources/get/models`);
      const cdnGets = proxy.seen.filter((l) =>
        l.startsWith(`GET ${s3?.endpoint}/${cdnBucket}/models-cdn/models/m1/`),
      );
      expect(cdnGets.length).toBeGreaterThanOrEqual(1);
    } finally {
      await proxy.close();
    }
  });

  it.skipIf(skipTty)(
    'on a terminal: push asks for the password without echo and draws a progress bar',
    async () => {
      const r = await runOnTty(['push', model, 'models', '--name', 'm3'], {
        env: { SLUICE_CONFIG_DIR: configOf('uploader'), SLUICE_HARDWARE_HASH: HW_UPLOADER },
        // The prompt names the account.
        answers: [[/password for uploader@example\.com: /, PASSWORD]],
      });
      expect(r.code, r.stdout).toBe(0);
      expect(r.stdout).toMatch(/\rmodels\/m3 \[#+\] 100% /);
      expect(r.stdout).toMatch(/pushed .* → models\/m3 v1 .*big part on the S3 CDN/);
      expect(r.stdout).not.toContain(PASSWORD);
      expectNoSecret(r.stdout);
    },
  );

  it('push as a user who may not upload is refused and leaves nothing on the CDN', async () => {
    const before = await objects(cdnBucket);
    const r = await as('device', ['push', model, 'models', '--name', 'm2'], {
      SLUICE_PASSWORD: PASSWORD,
      SLUICE_HARDWARE_HASH: HW_DEVICE,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('(ERR_FORBIDDEN)');
    expect(await objects(cdnBucket)).toEqual(before);
  });

  it('doctor shows the CDN kind, endpoint and bucket when logged in to that server', async () => {
    const r = await as('device', ['doctor', '--json'], { SLUICE_HARDWARE_HASH: HW_DEVICE });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).server.cdn).toEqual({
      kind: 's3',
      endpoint: s3?.endpoint,
      region: s3?.region,
      bucket: cdnBucket,
      prefix: 'models-cdn',
      chunkSize: MiB,
    });
    const text = await as('device', ['doctor', '--server', url]);
    expect(text.stdout).toMatch(
      new RegExp(`^cdn\\s+s3 ${s3?.endpoint} bucket ${cdnBucket} prefix models-cdn/`, 'm'),
    );
    expectNoSecret(r.stdout + text.stdout);
    // Not logged in: no CDN line, and no complaint either.
    const anonymous = await run(['doctor', '--server', url, '--json']);
    expect(anonymous.code, anonymous.stderr).toBe(0);
    expect(JSON.parse(anonymous.stdout).server).not.toHaveProperty('cdn');
  });

  it('SIGTERM closes it (exit 0); its logs hold no key', async () => {
    serve.kill('SIGTERM');
    const r = await serveDone;
    expect(r.code, r.stderr).toBe(0);
    expectNoSecret(r.stdout + serveErr);
    expect(r.stdout).not.toContain(PASSWORD);
  });
});

describe.skipIf(!s3)('sluice serve from the environment and flags alone', () => {
  it('serves with the buckets named by env and flags; flags win; stops on SIGTERM', async () => {
    if (!s3 || !client) throw new Error('no S3');
    const store = bucketName('envstore');
    const cdn = bucketName('envcdn');
    await client.send(new CreateBucketCommand({ Bucket: cdn }));
    const child = start(
      [
        'serve',
        '--data',
        join(dir, 'env-data'),
        '--port',
        '0',
        '--s3-bucket',
        store,
        '--cdn-prefix',
        'from-flag',
        '--shutdown-grace',
        '0.5',
      ],
      {
        env: {
          SLUICE_S3_ENDPOINT: s3.endpoint,
          SLUICE_S3_BUCKET: 'overridden-by-the-flag',
          SLUICE_S3_ACCESS_KEY: s3.rw.accessKeyId,
          SLUICE_S3_SECRET_KEY: s3.rw.secretAccessKey,
          SLUICE_CDN_BUCKET: cdn,
          SLUICE_CDN_PREFIX: 'from-env',
          SLUICE_CDN_READ_ACCESS_KEY: s3.read.accessKeyId,
          SLUICE_CDN_READ_SECRET_KEY: s3.read.secretAccessKey,
        },
      },
    );
    const done = finished(child);
    await listeningUrl(child);
    child.kill('SIGTERM');
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`small parts: S3 ${s3.endpoint} bucket ${store}\n`);
    expect(r.stderr).toContain(
      `big parts:   S3 CDN ${s3.endpoint} bucket ${cdn} prefix from-flag/`,
    );
    expectNoSecret(r.stdout + r.stderr);
    // The server created its storage bucket.
    await client.send(new HeadBucketCommand({ Bucket: store }));
  });
});

describe('sluice serve refuses bad settings', () => {
  it('a config file holding keys with mode 0644: exit 1, says chmod 600, quotes no key', async () => {
    const config = join(dir, 'loose.json');
    const secret = 'loose-secret-must-not-print';
    writeFileSync(
      config,
      JSON.stringify({
        storage: {
          kind: 's3',
          endpoint: 'http://127.0.0.1:9',
          region: 'us-east-1',
          bucket: 'never-created',
          credentials: { accessKeyId: 'K', secretAccessKey: secret },
        },
      }),
    );
    chmodSync(config, 0o644);
    const data = join(dir, 'loose-data');
    const r = await run(['serve', '--config', config, '--data', data, '--port', '0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`config file ${config} holds secret keys`);
    expect(r.stderr).toContain(`chmod 600 ${config}`);
    expect(r.stderr).toContain('(ERR_INSECURE_FILE)');
    expect(r.stdout + r.stderr).not.toContain(secret);
    expect(existsSync(data)).toBe(false);
  });

  it('a bad setting from the environment names the setting and the variable, not the value', async () => {
    const r = await run(['serve', '--data', join(dir, 'bad-bucket'), '--port', '0'], {
      env: {
        SLUICE_S3_ENDPOINT: 'http://127.0.0.1:9',
        SLUICE_S3_BUCKET: 'Not_A_Bucket',
        SLUICE_S3_ACCESS_KEY: 'K',
        SLUICE_S3_SECRET_KEY: 'value-must-not-print',
      },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^sluice: storage\.bucket must be a valid S3 bucket name \(from SLUICE_S3_BUCKET\) \(ERR_INVALID_ARG\)$/m,
    );
    expect(r.stderr).not.toContain('value-must-not-print');
  });

  it.skipIf(!s3)(
    'a wrong S3 secret: exit 1 naming the endpoint, the secret in no output',
    async () => {
      if (!s3 || !client) throw new Error('no S3');
      const wrong = `${s3.rw.secretAccessKey.slice(0, -4)}XXXX`;
      const bucket = bucketName('wrong');
      const data = join(dir, 'wrong-secret');
      const r = await run(
        [
          'serve',
          '--data',
          data,
          '--port',
          '0',
          '--s3-endpoint',
          s3.endpoint,
          '--s3-bucket',
          bucket,
        ],
        {
          env: {
            SLUICE_S3_ACCESS_KEY: s3.rw.accessKeyId,
            SLUICE_S3_SECRET_KEY: wrong,
            // What a user's shell has: the CLI itself keeps the AWS SDK's Node warning out.
            AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: undefined,
          },
        },
      );
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toContain(s3.endpoint);
      expect(r.stderr).not.toContain('listening on');
      expect(r.stdout + r.stderr).not.toContain(wrong);
      expectNoSecret(r.stdout + r.stderr);
      await expect(client.send(new HeadBucketCommand({ Bucket: bucket }))).rejects.toThrow();
      // The data directory was released: a correct start right after does not find it locked.
      expect(existsSync(join(data, 'server.lock'))).toBe(false);
    },
  );
});
