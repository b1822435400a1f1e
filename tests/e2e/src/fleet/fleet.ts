// Two `sluice serve` processes over one PostgreSQL database and one S3 bucket (a real Ceph RGW),
// each with its own data directory holding the same key files: the first instance creates
// master.key and jwt-signing-key.json, and they are copied into the second's directory before it
// starts (the way `sluice serve --help` documents it). Real processes, so SIGKILL is real.
import { randomBytes } from 'node:crypto';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { MASTER_KEY_FILE, SIGNING_KEY_FILE } from '@sluice/server';
import { freshDatabase, postgresTestEnv } from '../../../../packages/server/src/test-postgres.js';
import { ADMIN_EMAIL, onCleanup, PASSWORD, removeDir, tempDir } from '../apiServer.js';
import { type CliRun, fastHashConfig, listening, sluice } from '../faults/cliChild.js';
import { type S3Env, sharedS3 } from '../faults/s3World.js';

export interface FleetEnv {
  s3: S3Env;
}

/**
 * The shared RGW and PostgreSQL of the test command (SLUICE_TEST_S3_*, SLUICE_TEST_DATABASE_URL),
 * or undefined after one line saying what is missing; with CI=true a missing one throws instead.
 */
export function fleetEnv(): FleetEnv | undefined {
  const env = process.env;
  const missing = [
    env.SLUICE_TEST_DATABASE_URL ? undefined : 'SLUICE_TEST_DATABASE_URL',
    env.SLUICE_TEST_S3_ENDPOINT ? undefined : 'SLUICE_TEST_S3_ENDPOINT',
  ].filter((name) => name !== undefined);
  if (missing.length > 0) {
    if (env.CI === 'true') throw new Error(`CI=true but ${missing.join(' and ')} not set`);
    console.warn(
      `two-instance e2e tests skipped: ${missing.join(' and ')} not set (eval "$(node scripts/postgres/postgres.mjs start --dir /tmp/sluice-pg)"; eval "$(node scripts/ceph/ceph.mjs start --dir /tmp/sluice-ceph)")`,
    );
    return undefined;
  }
  postgresTestEnv(env); // throws on a URL that is not postgres://
  return { s3: sharedS3() as S3Env };
}

/** One `sluice serve` process. */
export interface Instance {
  name: string;
  url: string;
  dataDir: string;
  run: CliRun;
  /** The JSON log lines the process wrote so far whose `event` is `event`. */
  events(event: string): Record<string, unknown>[];
  /** SIGKILLs the process and resolves once it is gone. */
  kill(): Promise<NodeJS.Signals | null>;
}

export interface Fleet {
  a: Instance;
  b: Instance;
  bucket: string;
  databaseUrl: string;
}

export interface FleetOptions {
  /** The S3 endpoint A reaches the bucket through (e.g. a FaultProxy in front of radosgw). */
  storageEndpointOfA?: string;
}

/**
 * A fresh database and bucket, instance A (which creates the first ApiAdmin and the keys), then
 * instance B on a copy of A's two key files. Everything is killed and removed after the test.
 */
export async function startFleet(env: FleetEnv, options: FleetOptions = {}): Promise<Fleet> {
  const db = await freshDatabase();
  onCleanup(() => db.drop());
  const bucket = `sluice-fleet-${randomBytes(4).toString('hex')}`;
  onCleanup(() => dropBucket(env.s3, bucket));
  const configDir = await tempDir('sluice-fleet-config-');
  onCleanup(() => removeDir(configDir));
  const shared = {
    s3: env.s3,
    config: await fastHashConfig(configDir),
    bucket,
    databaseUrl: db.url,
  };
  const dirA = await tempDir('sluice-fleet-a-');
  const dirB = await tempDir('sluice-fleet-b-');
  onCleanup(() => removeDir(dirA));
  onCleanup(() => removeDir(dirB));
  const a = await startInstance(shared, {
    name: 'A',
    dataDir: dirA,
    endpoint: options.storageEndpointOfA ?? env.s3.endpoint,
    initAdmin: true,
  });
  for (const file of [MASTER_KEY_FILE, SIGNING_KEY_FILE]) {
    await copyFile(join(dirA, file), join(dirB, file));
  }
  const b = await startInstance(shared, { name: 'B', dataDir: dirB, endpoint: env.s3.endpoint });
  return { a, b, bucket, databaseUrl: db.url };
}

/** What both instances are started with. */
interface Shared {
  s3: S3Env;
  /** The `--config` file (the tests' cheaper password hash). */
  config: string;
  bucket: string;
  databaseUrl: string;
}

/** `sluice serve` on a free port; killed after the test if it still runs. */
async function startInstance(
  shared: Shared,
  spec: { name: string; dataDir: string; endpoint: string; initAdmin?: boolean },
): Promise<Instance> {
  const { s3 } = shared;
  const args = ['serve', '--config', shared.config, '--data', spec.dataDir, '--port', '0'];
  args.push('--s3-endpoint', spec.endpoint, '--s3-region', s3.region, '--s3-bucket', shared.bucket);
  if (spec.initAdmin) args.push('--init-admin', ADMIN_EMAIL);
  const run = sluice(args, {
    // In the environment, not --database: a URL with a password is refused as a flag.
    SLUICE_DATABASE_URL: shared.databaseUrl,
    SLUICE_S3_ACCESS_KEY: s3.rw.accessKeyId,
    SLUICE_S3_SECRET_KEY: s3.rw.secretAccessKey,
    SLUICE_ADMIN_PASSWORD: PASSWORD,
    // The envelope route says whether it answered from its cache (`cache;desc=hit`).
    SLUICE_SERVER_TIMING: '1',
  });
  let stdout = '';
  run.child.stdout?.on('data', (d: string) => {
    stdout += d;
  });
  const events = (event: string) =>
    stdout
      .slice(0, stdout.lastIndexOf('\n')) // whole lines only
      .split('\n')
      .filter((line) => line.includes(`"event":"${event}"`))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  const kill = async () => {
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
    return (await run.done).signal;
  };
  onCleanup(async () => {
    await kill();
  });
  const url = await listening(run);
  return { name: spec.name, url, dataDir: spec.dataDir, run, events, kill };
}

/** Empties and removes `bucket` (the server created it at start). */
async function dropBucket(s3: S3Env, bucket: string): Promise<void> {
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: s3.rw,
  });
  try {
    for (;;) {
      const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      for (const o of listed.Contents ?? []) {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }));
      }
      if (!listed.IsTruncated) break;
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } catch (e) {
    if ((e as { name?: unknown }).name !== 'NoSuchBucket') throw e;
  } finally {
    client.destroy();
  }
}
