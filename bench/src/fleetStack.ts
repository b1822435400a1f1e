// What bench:fleet runs against: the embedded default (one instance over its data directory) and
// PostgreSQL (a throwaway cluster, scripts/postgres) with S3 storage, two instances over one
// database. S3 is the shared Ceph named by SLUICE_TEST_S3_* when set (a bucket of the bench's
// own, removed at the end), else a throwaway Ceph in the bench's temp dir, as bench:pull --s3
// starts one (scripts/ceph).
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import type { S3StorageConfig } from '@sluice/server';
import { startCeph, stopCeph } from '../../scripts/ceph/ceph.mjs';
import { type PostgresCluster, startPostgres } from '../../scripts/postgres/postgres.mjs';
import { type ServerChild, startServerChild } from './fleetChild.js';

export interface Stack {
  embedded: ServerChild;
  /** Two instances over the one PostgreSQL database. */
  postgres: [ServerChild, ServerChild];
  /** CPU ms of the PostgreSQL cluster's processes so far (postmaster and backends). */
  postgresCpuMs: () => number;
  /** Where the S3 storage is, for the report. */
  s3: string;
  close(): Promise<void>;
}

type Log = (msg: string) => void;

/** The shared Ceph of SLUICE_TEST_S3_*, or a throwaway one in `dir`; and how to clean up. */
async function s3Storage(dir: string, log: Log) {
  const env = process.env;
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const bucket = `sluice-bench-fleet-${randomBytes(4).toString('hex')}`;
  if (
    env.SLUICE_TEST_S3_ENDPOINT &&
    env.SLUICE_TEST_S3_ACCESS_KEY &&
    env.SLUICE_TEST_S3_SECRET_KEY
  ) {
    const storage: S3StorageConfig = {
      kind: 's3',
      endpoint: env.SLUICE_TEST_S3_ENDPOINT,
      region: env.SLUICE_TEST_S3_REGION ?? 'us-east-1',
      bucket,
      credentials: {
        accessKeyId: env.SLUICE_TEST_S3_ACCESS_KEY,
        secretAccessKey: env.SLUICE_TEST_S3_SECRET_KEY,
      },
    };
    log(`S3: the Ceph RGW of SLUICE_TEST_S3_ENDPOINT (${storage.endpoint}), bucket ${bucket}`);
    return {
      storage,
      where: 'the shared Ceph RGW (SLUICE_TEST_S3_*)',
      stop: () => dropBucket(storage),
    };
  }
  log('S3: starting a throwaway Ceph (mon, OSD, radosgw)…');
  const cephDir = join(dir, 'ceph');
  const cluster = await startCeph({ dir: cephDir });
  const storage: S3StorageConfig = {
    kind: 's3',
    endpoint: cluster.endpoint,
    region: cluster.region,
    bucket,
    credentials: { accessKeyId: cluster.accessKeyId, secretAccessKey: cluster.secretAccessKey },
  };
  return { storage, where: 'a throwaway Ceph RGW (scripts/ceph)', stop: () => stopCeph(cephDir) };
}

/** Deletes every object of the bench's bucket, then the bucket. */
async function dropBucket(s: S3StorageConfig): Promise<void> {
  const client = new S3Client({
    endpoint: s.endpoint,
    region: s.region,
    credentials: s.credentials,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  try {
    for (;;) {
      const page = await client.send(new ListObjectsV2Command({ Bucket: s.bucket }));
      const keys = (page.Contents ?? []).flatMap((o) => (o.Key === undefined ? [] : [o.Key]));
      if (keys.length === 0) break;
      for (const Key of keys) await client.send(new DeleteObjectCommand({ Bucket: s.bucket, Key }));
    }
    await client.send(new DeleteBucketCommand({ Bucket: s.bucket }));
  } catch (e) {
    if ((e as { name?: unknown }).name !== 'NoSuchBucket') throw e;
  } finally {
    client.destroy();
  }
}

/** CPU ms (user + system) of `pid` and its direct children, from /proc. */
function treeCpuMs(pid: number, ticksPerSecond = 100): number {
  let ticks = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // After the command name (which may hold spaces): ppid is field 4, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(name) !== pid && Number(fields[1]) !== pid) continue;
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return (ticks * 1000) / ticksPerSecond;
}

/** Starts PostgreSQL, S3, and the three instances; `close()` stops all of it. */
export async function startStack(
  dir: string,
  children: Set<ChildProcess>,
  log: Log,
): Promise<Stack> {
  const stops: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const stop of stops.reverse()) await stop().catch((e) => log(`cleanup: ${String(e)}`));
  };
  try {
    log('PostgreSQL: starting a throwaway cluster (scripts/postgres)…');
    // A directory of its own under the system temp dir: the bench's is closed to the postgres user.
    const pgDir = mkdtempSync(join(tmpdir(), 'sluice-bench-fleet-pg-'));
    stops.push(async () => rmSync(pgDir, { recursive: true, force: true }));
    const pg: PostgresCluster = await startPostgres({ dir: pgDir });
    stops.push(() => pg.stop());
    const s3 = await s3Storage(dir, log);
    stops.push(s3.stop);
    const start = async (options: Parameters<typeof startServerChild>[0]) => {
      const child = await startServerChild(options, children);
      stops.push(() => child.close());
      return child;
    };
    const embedded = await start({ dataDir: join(dir, 'embedded') });
    // One data directory (the keys every instance shares); the second starts once it has them.
    const pgOptions = {
      dataDir: join(dir, 'pg-instances'),
      databaseUrl: pg.url,
      storage: s3.storage,
    };
    const first = await start(pgOptions);
    const second = await start(pgOptions);
    return {
      embedded,
      postgres: [first, second],
      postgresCpuMs: () => treeCpuMs(pg.pid),
      s3: s3.where,
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
