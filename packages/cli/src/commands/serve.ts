import { DEFAULT_SCRYPT_PARAMS, LOG_LEVELS } from '@sluice/server/defaults';
import { defineCommand } from '../command.js';
import type { Flags, FlagValues } from '../flags.js';
import { SERVE_ENV as E } from '../serveSettings/serveEnv.js';

const text = (value: string, help: string) => ({ type: 'string', value, help }) as const;

const serveFlags = {
  data: text(
    'DIR',
    'data directory (default $SLUICE_DATA_DIR, else $XDG_DATA_HOME/sluice, ' +
      'else ~/.local/share/sluice); one server per directory',
  ),
  host: { ...text('HOST', 'address to listen on'), default: '127.0.0.1' },
  port: { ...text('PORT', 'port to listen on; 0 picks a free one'), default: '8080' },
  'init-admin': text(
    'EMAIL',
    'first create this ApiAdmin (password from --password-stdin, $SLUICE_ADMIN_PASSWORD or a ' +
      'prompt; there is no default password)',
  ),
  'password-stdin': {
    type: 'boolean',
    help: "with --init-admin: read the new admin's password from the first line of stdin",
  },
  'init-only': {
    type: 'boolean',
    help: 'with --init-admin: create the admin and exit without serving',
  },
  config: text(
    'FILE',
    'JSON {storage, cdn, shutdownGraceMs, drainDelayMs, passwordHash, trustProxy, timeouts, ' +
      'databaseUrl, tlsCert, tlsKey, logLevel, keepVersions, deviceBinding, leaseDays} as in ' +
      'docs/API.md; a file holding ' +
      'secret keys must not be readable by group or others (chmod 600)',
  ),
  's3-endpoint': text('URL', 'S3 endpoint (http(s) origin) of the storage and the CDN'),
  's3-region': text('REGION', 'their region (default us-east-1)'),
  's3-bucket': text('NAME', 'keep small parts in this bucket (created if missing), not in DIR'),
  's3-prefix': text('P', 'key prefix in that bucket'),
  'cdn-bucket': text('NAME', 'put big parts on an S3 CDN: this bucket (it must exist)'),
  'cdn-prefix': text('P', 'key prefix of big parts in the CDN bucket'),
  'cdn-endpoint': text('URL', "the CDN's endpoint when it is not the --s3-endpoint"),
  'shutdown-grace': text(
    'S',
    'on SIGINT/SIGTERM, let transfers run S seconds at most (default 30)',
  ),
  database: text(
    'URL',
    `PostgreSQL as the system of record (postgres://user@host:port/db; or ${E.database}), ` +
      'for any number of instances; needs S3 storage (--s3-bucket)',
  ),
  'migrate-only': {
    type: 'boolean',
    help: 'apply pending database migrations and exit without serving',
  },
  'drain-delay': text(
    'S',
    'on SIGINT/SIGTERM, first answer 503 on /readyz and keep serving S seconds, so a load ' +
      'balancer moves traffic away before the server stops accepting (default 0)',
  ),
  'lease-days': text(
    'D',
    `how long the offline lease sent with each envelope lets a device open that version without ` +
      `the server (or ${E.leaseDays}, or leaseDays in --config; decimals allowed; default 7; 0: no offline use)`,
  ),
  'trust-proxy': text(
    'ADDRESSES',
    'believe X-Forwarded-For from these proxies (addresses, CIDRs, loopback…, comma-separated): ' +
      'the login limits then see the real client addresses (default: trust none)',
  ),
  'tls-cert': text(
    'FILE',
    `serve HTTPS with this PEM certificate (chain) (or ${E.tlsCert}, or tlsCert in --config); needs --tls-key`,
  ),
  'tls-key': text(
    'FILE',
    `the certificate's PEM private key (or ${E.tlsKey}, or tlsKey in --config); keep it chmod 600`,
  ),
  keep: text(
    'N',
    `retention: after each push keep the newest N versions of that resource (and the released ` +
      `one), deleting the others with their parts (or ${E.keepVersions}, or keepVersions in ` +
      '--config; default 0: keep all)',
  ),
  'log-level': text(
    'LEVEL',
    `${LOG_LEVELS.join(', ')} (or ${E.logLevel}, or logLevel in --config; default info: one line ` +
      'per request, big-part ranges only at debug)',
  ),
  'binding-max-drift': text(
    'N',
    `bound hardware factors a device may change or lose and still be accepted (or ${E.bindingMaxDrift}; default 1: all but one must match; 0: none)`,
  ),
  'binding-min-match': text(
    'K',
    `factors that must match however many are bound (or ${E.bindingMinMatch}; default and least 3)`,
  ),
  'binding-drift-cooldown': text(
    'S',
    `after a device drifted, refuse another drift of that binding for S seconds (or ${E.bindingDriftCooldown}; default 86400)`,
  ),
} satisfies Flags;

export const serveCommand = defineCommand({
  name: 'serve',
  summary: 'Run the resource API: one local data directory, or parts on S3 and an S3 CDN',
  usage:
    '[--data DIR] [--host 127.0.0.1] [--port 8080] [--init-admin EMAIL [--init-only] [--password-stdin]]\n' +
    '[--config FILE] [--s3-endpoint URL] [--s3-bucket B] [--cdn-bucket B] [--shutdown-grace S]\n' +
    '[--drain-delay S] [--trust-proxy ADDRESSES] [--database URL [--migrate-only]]\n' +
    '[--tls-cert FILE --tls-key FILE] [--log-level LEVEL] [--keep N] [--lease-days D]\n' +
    '[--binding-max-drift N] [--binding-min-match K] [--binding-drift-cooldown S]',
  flags: serveFlags,
  notes: [
    'Settings come from --config, then the environment, then flags (each overrides the one before):',
    `  ${E.endpoint}, ${E.region}, ${E.bucket}, ${E.prefix}`,
    `  ${E.accessKey}, ${E.secretKey}    read-write keys: storage and CDN uploads`,
    `  ${E.cdnEndpoint}, ${E.cdnBucket}, ${E.cdnPrefix}`,
    `  ${E.readAccessKey}, ${E.readSecretKey}  read-only keys, handed to devices`,
    `  ${E.metricsToken}  if set, GET /metrics needs "Authorization: Bearer <it>" (else it is open)`,
    'Keys are never flags. Without a bucket: the embedded default (everything in DIR).',
    `With --database (or ${E.database}): PostgreSQL holds the records, S3 the parts, DIR the keys`,
    '(master.key, jwt-signing-key.json: give every instance the same files); migrations run at start.',
    `"passwordHash": {"logN": N} in --config sets the scrypt cost of new password hashes to 2^N`,
    `(default ${DEFAULT_SCRYPT_PARAMS.logN}; unsafe values are refused): lower it only for tests.`,
    'Logs JSON lines to stdout; prints where parts go and `listening on URL` to stderr once ready.',
    'GET /healthz (up), GET /readyz (503 when storage fails or while closing), GET /metrics,',
    'GET /openapi.json (the OpenAPI 3 document of the API).',
    'With --tls-cert/--tls-key it serves HTTPS; clients trust a private CA with NODE_EXTRA_CA_CERTS=FILE.',
    'SIGINT or SIGTERM closes it gracefully: /readyz turns 503, --drain-delay passes, in-flight',
    'transfers finish (up to --shutdown-grace), then exit 0.',
  ],
  positionals: [0, 0],
  async run(values, _positionals, io) {
    // The server (Fastify, the stores, the AWS SDK) loads only when serving: every other
    // command starts without it.
    const { runServe } = await import('./serveRun.js');
    return runServe(values, io);
  },
});

/** What `sluice serve` was given. */
export type ServeValues = FlagValues<typeof serveFlags>;
