// radosgw restarted in the middle of a download: on a private cluster, so the shared one that the
// other suites use is never disturbed. The cluster is first started and stopped through the
// script's command line, then started again (reusing its data) through its API.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CephCluster, startCeph } from '../../../../scripts/ceph/ceph.mjs';
import { type S3TestEnv, s3TestEnv } from '../testS3.js';
import type { S3RequestInfo } from './s3Client.js';
import { S3Downloader } from './s3Downloader.js';
import { S3Objects } from './s3Objects.js';

// Runs where the S3 suite runs (the runner installed Ceph); quiet: the main suite says how to enable.
const enabled = s3TestEnv({ quiet: true }) !== undefined;
const script = new URL('../../../../scripts/ceph/ceph.mjs', import.meta.url).pathname;
const run = promisify(execFile);
let cluster: CephCluster | undefined;
let dir: string | undefined;

afterAll(async () => {
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!enabled)('S3Downloader across a radosgw restart', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-ceph-private-'));
  });

  it('starts with `ceph.mjs start --json`, answers S3, and `stop` ends exactly its daemons', async () => {
    if (!dir) throw new Error('no dir');
    const { stdout } = await run(process.execPath, [script, 'start', '--dir', dir, '--json']);
    const started = JSON.parse(stdout) as Record<string, string> & { pids: Record<string, number> };
    expect(started.SLUICE_TEST_CEPH_DIR).toBe(dir);
    expect(started.SLUICE_TEST_S3_ENDPOINT).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(started.SLUICE_TEST_S3_READ_ACCESS_KEY).not.toBe(started.SLUICE_TEST_S3_ACCESS_KEY);
    expect(Object.keys(started.pids).sort()).toEqual(['mon', 'osd', 'rgw']);
    const res = await fetch(started.SLUICE_TEST_S3_ENDPOINT as string);
    expect(await res.text()).toContain('ListAllMyBucketsResult');
    await run(process.execPath, [script, 'stop', '--dir', dir]);
    for (const pid of Object.values(started.pids)) {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => 'gone');
      expect(stat === 'gone' || / Z /.test(stat)).toBe(true);
    }
    // the shared cluster the other suites use is untouched
    const shared = s3TestEnv({ quiet: true });
    if (shared) expect((await fetch(shared.endpoint)).status).toBeLessThan(500);
    // started again from the same directory: same endpoint and keys
    cluster = await startCeph({ dir });
    expect(cluster.endpoint).toBe(started.SLUICE_TEST_S3_ENDPOINT);
    expect(cluster.accessKeyId).toBe(started.SLUICE_TEST_S3_ACCESS_KEY);
  });

  it('completes a download after retries when radosgw restarts mid-way', async () => {
    if (!cluster) throw new Error('no cluster');
    const env: S3TestEnv = { ...cluster };
    const requests: S3RequestInfo[] = [];
    const settings = {
      endpoint: env.endpoint,
      region: env.region,
      bucket: 'restart',
      uploader: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
      downloader: { accessKeyId: env.readAccessKeyId, secretAccessKey: env.readSecretAccessKey },
    };
    const options = { maxAttempts: 2, onRequest: (r: S3RequestInfo) => requests.push(r) };
    const objects = new S3Objects(settings, options);
    const downloader = new S3Downloader(settings, {
      ...options,
      backoffMs: 200,
      maxBackoffMs: 2000,
    });
    try {
      await objects.ensureBucket();
      const chunkSize = 256 * 1024;
      const data = randomBytes(64 * chunkSize);
      await objects.upload('obj.bin', data);
      const out = Buffer.alloc(data.length);
      const c = cluster;
      let stopped: Promise<void> | undefined;
      let restarted: Promise<void> | undefined;
      let delivered = 0;
      let getsWhenStopped = 0;
      await downloader.download({
        url: 'obj.bin',
        size: data.length,
        chunkSize,
        concurrency: 4,
        retries: 10,
        onChunk: async (index, chunk) => {
          chunk.copy(out, index * chunkSize);
          if (++delivered === 8) {
            stopped = c.stopRgw().then(() => {
              getsWhenStopped = requests.filter((r) => r.command === 'GetObjectCommand').length;
              // Down for a while whatever the load: GETs sent meanwhile meet a dead gateway (a
              // start at once let a loaded machine send the rest only once it was back).
              restarted = new Promise((r) => setTimeout(r, 1500)).then(() => c.startRgw());
            });
          }
          // Every chunk after the 8th waits until radosgw is down (not merely asked to stop:
          // it drains in-flight requests first), so the GETs that follow meet a dead gateway
          // whatever the machine's load.
          if (stopped) await stopped;
        },
      });
      await restarted;
      expect(out.equals(data)).toBe(true);
      expect(delivered).toBe(64);
      // chunks were still missing when the gateway went down, and some GETs failed and were retried
      expect(getsWhenStopped).toBeLessThan(64);
      const gets = requests.filter((r) => r.command === 'GetObjectCommand');
      expect(gets.length).toBeGreaterThan(64);
    } finally {
      objects.destroy();
      downloader.destroy();
    }
  });
});
