import { describeDatabaseUrl } from '@sluice/server';
import type { ServeSettings } from './resolveServeSettings.js';

/** Where small and big parts go, for the log on stderr: endpoints and buckets, never keys. */
export function describeStores(settings: ServeSettings, dataDir: string): string[] {
  const where = (s: { endpoint: string; bucket: string; prefix?: string | undefined }) =>
    `${s.endpoint.replace(/\/+$/, '')} bucket ${s.bucket}${s.prefix ? ` prefix ${s.prefix}/` : ''}`;
  const { storage, cdn, databaseUrl } = settings;
  return [
    databaseUrl === undefined
      ? `records:     ${dataDir}/sluice.db (embedded SQLite)`
      : `records:     PostgreSQL ${describeDatabaseUrl(databaseUrl)}`,
    storage?.kind === 's3'
      ? `small parts: S3 ${where(storage)}`
      : `small parts: ${dataDir}/blobs (file storage)`,
    cdn?.kind === 's3'
      ? `big parts:   S3 CDN ${where(cdn)} (devices get read keys, uploaders write keys)`
      : 'big parts:   this API over HTTP (GET /resources/{folder}/{name}/big)',
  ];
}
