/** The environment variables `sluice serve` reads, for its settings and its help. */
export const SERVE_ENV = {
  endpoint: 'SLUICE_S3_ENDPOINT',
  region: 'SLUICE_S3_REGION',
  bucket: 'SLUICE_S3_BUCKET',
  prefix: 'SLUICE_S3_PREFIX',
  accessKey: 'SLUICE_S3_ACCESS_KEY',
  secretKey: 'SLUICE_S3_SECRET_KEY',
  cdnEndpoint: 'SLUICE_CDN_ENDPOINT',
  cdnBucket: 'SLUICE_CDN_BUCKET',
  cdnPrefix: 'SLUICE_CDN_PREFIX',
  readAccessKey: 'SLUICE_CDN_READ_ACCESS_KEY',
  readSecretKey: 'SLUICE_CDN_READ_SECRET_KEY',
  database: 'SLUICE_DATABASE_URL',
  metricsToken: 'SLUICE_METRICS_TOKEN',
  tlsCert: 'SLUICE_TLS_CERT',
  tlsKey: 'SLUICE_TLS_KEY',
  logLevel: 'SLUICE_LOG_LEVEL',
  bindingMaxDrift: 'SLUICE_BINDING_MAX_DRIFT',
  bindingMinMatch: 'SLUICE_BINDING_MIN_MATCH',
  bindingDriftCooldown: 'SLUICE_BINDING_DRIFT_COOLDOWN',
  keepVersions: 'SLUICE_KEEP_VERSIONS',
  leaseDays: 'SLUICE_LEASE_DAYS',
} as const;

/** Region when none is given: what Ceph RGW and MinIO accept by default. */
export const DEFAULT_REGION = 'us-east-1';
