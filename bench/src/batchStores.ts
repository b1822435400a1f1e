// The two stores bench:batch runs on, each with `count` resources pushed: the embedded default
// (the API serves big parts itself) and a throwaway Ceph RGW (big parts on an S3 CDN, small parts
// in an S3 bucket), the API in this process on loopback either way.
import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { S3Objects } from '@sluice/cdn';
import { fetchCdnConfig, push, Session } from '@sluice/core';
import type { ServerOptions } from '@sluice/server';
import { type CephCluster, startCeph } from '../../scripts/ceph/ceph.mjs';
import { writePseudoModel } from './benchFiles.js';
import { type PullServer, startPullServer } from './pullServer.js';

export const FOLDER = 'batch';
export const UPLOADER = 'uploader@bench.invalid';
export const DEVICE = 'device@bench.invalid';
const CDN_BUCKET = 'sluice-bench-batch-cdn';
const STORE_BUCKET = 'sluice-bench-batch-store';
// Fixed stand-ins for the two devices' hardware hashes: the first use binds, later ones match.
export const HARDWARE = createHash('sha256').update('sluice bench:batch device').digest('hex');
const UPLOADER_HARDWARE = createHash('sha256').update('sluice bench:batch uploader').digest('hex');

export interface BatchStore {
  kind: 'embedded' | 's3';
  server: PullServer;
  /** Plaintext SHA-256 by resource name. */
  shas: Map<string, string>;
  /** The radosgw and OSD pids (S3 only), for their CPU. */
  pids?: { rgw: number; osd: number };
}

/** Starts a private Ceph RGW in `dir` (stopped by the caller with stopCeph(dir)). */
export async function startBenchCeph(dir: string): Promise<CephCluster> {
  const cluster = await startCeph({ dir });
  const { endpoint, region } = cluster;
  const rw = { accessKeyId: cluster.accessKeyId, secretAccessKey: cluster.secretAccessKey };
  const cdn = new S3Objects({ endpoint, region, bucket: CDN_BUCKET, uploader: rw });
  await cdn.ensureBucket();
  cdn.destroy();
  return cluster;
}

/**
 * The API over `dataDir` (with `cluster`: S3 storage and an S3 CDN on it), its uploader and device
 * user, and `count` pseudo-models of `size` bytes pushed as `FOLDER/r000.bin`… two at a time.
 */
export async function startBatchStore(
  dataDir: string,
  count: number,
  size: number,
  cluster: CephCluster | undefined,
  log: (msg: string) => void,
): Promise<BatchStore> {
  let options: Omit<ServerOptions, 'dataDir'> = {};
  if (cluster !== undefined) {
    const { endpoint, region } = cluster;
    const rw = { accessKeyId: cluster.accessKeyId, secretAccessKey: cluster.secretAccessKey };
    const read = {
      accessKeyId: cluster.readAccessKeyId,
      secretAccessKey: cluster.readSecretAccessKey,
    };
    options = {
      storage: { kind: 's3', endpoint, region, bucket: STORE_BUCKET, credentials: rw },
      cdn: {
        kind: 's3',
        endpoint,
        region,
        bucket: CDN_BUCKET,
        prefix: 'batch-cdn',
        downloader: read,
        uploader: rw,
      },
    };
  }
  const server = await startPullServer(dataDir, options);
  try {
    await server.createUser(UPLOADER, 'ResourceUploader');
    await server.createUser(DEVICE, 'Operator');
    const uploader = new Session({ apiUrl: server.url });
    uploader.setCredentials(UPLOADER, server.password);
    await uploader.login();
    // One CDN config with the uploader keys for every push (each fetch costs a scrypt).
    const cdn =
      cluster === undefined
        ? undefined
        : await fetchCdnConfig(uploader, {
            password: server.password,
            hardware: UPLOADER_HARDWARE,
            write: true,
          });
    const shas = new Map<string, string>();
    const srcDir = join(dataDir, '..', `src-${cluster ? 's3' : 'embedded'}`);
    await mkdir(srcDir, { recursive: true });
    let next = 0;
    const pushOne = async (worker: number) => {
      const src = join(srcDir, `w${worker}.bin`);
      for (let i = next++; i < count; i = next++) {
        const name = resourceName(i);
        shas.set(name, await writePseudoModel(src, size));
        await push(uploader, FOLDER, name, src, {
          tempDir: srcDir,
          ...(cdn ? { cdn } : {}),
        });
        if ((i + 1) % 50 === 0) log(`  pushed ${i + 1}/${count}`);
      }
    };
    await Promise.all([pushOne(0), pushOne(1)]);
    await rm(srcDir, { recursive: true, force: true });
    const { rgw, osd } = cluster?.pids ?? {};
    return {
      kind: cluster ? 's3' : 'embedded',
      server,
      shas,
      ...(rgw !== undefined && osd !== undefined ? { pids: { rgw, osd } } : {}),
    };
  } catch (e) {
    await server.close().catch(() => {});
    throw e;
  }
}

export function resourceName(i: number): string {
  return `r${String(i).padStart(3, '0')}.bin`;
}
