/** A running throwaway Ceph cluster (see ceph.mjs). */
export interface CephCluster {
  endpoint: string;
  region: string;
  /** Read-write S3 keys. */
  accessKeyId: string;
  secretAccessKey: string;
  /** Read-only S3 keys (a subuser of the same user: reads everything the first pair writes). */
  readAccessKeyId: string;
  readSecretAccessKey: string;
  dir: string;
  readonly pids: Record<string, number>;
  stop(): Promise<void>;
  stopRgw(): Promise<void>;
  startRgw(): Promise<void>;
  restartRgw(): Promise<void>;
}

export function startCeph(options: {
  dir: string;
  rgwPort?: number;
  monPort?: number;
}): Promise<CephCluster>;
export function stopCeph(dir: string): Promise<void>;
export function ensureCephInstalled(): Promise<true | { ok: false; reason: string }>;
export function testEnv(cluster: CephCluster): Record<string, string>;
