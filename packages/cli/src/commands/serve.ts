import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer, initAdmin } from '@sluice/server';
import { type Command, EXIT, type Io, UsageError } from '../command.js';
import { readPassword } from '../password.js';
import {
  describeStores,
  SERVE_ENV as E,
  explainSettingError,
  resolveServeSettings,
  type ServeSettings,
} from '../serveSettings.js';
import { testScryptParams } from '../testScrypt.js';

export const serveCommand: Command = {
  name: 'serve',
  summary: 'Run the resource API: one local data directory, or parts on S3 and an S3 CDN',
  usage:
    '[--data DIR] [--host 127.0.0.1] [--port 8080] [--init-admin EMAIL [--init-only]]\n' +
    '[--config FILE] [--s3-endpoint URL] [--s3-bucket B] [--cdn-bucket B] [--shutdown-grace S]',
  help: [
    '  --data DIR          data directory (default $SLUICE_DATA_DIR, else $XDG_DATA_HOME/sluice,',
    '                      else ~/.local/share/sluice); one server per directory',
    '  --host HOST         address to listen on (default 127.0.0.1)',
    '  --port PORT         port to listen on (default 8080; 0 picks a free one)',
    '  --init-admin EMAIL  first create this ApiAdmin (password from $SLUICE_ADMIN_PASSWORD or a',
    '                      prompt; there is no default password)',
    '  --init-only         with --init-admin: create the admin and exit without serving',
    '  --config FILE       JSON {storage, cdn, shutdownGraceMs} as in docs/API.md; a file holding',
    '                      secret keys must not be readable by group or others (chmod 600)',
    '  --s3-endpoint URL   S3 endpoint (http(s) origin) of the storage and the CDN',
    '  --s3-region REGION  their region (default us-east-1)',
    '  --s3-bucket NAME    keep small parts in this bucket (created if missing), not in DIR',
    '  --s3-prefix P       key prefix in that bucket',
    '  --cdn-bucket NAME   put big parts on an S3 CDN: this bucket (it must exist)',
    '  --cdn-prefix P      key prefix of big parts in the CDN bucket',
    "  --cdn-endpoint URL  the CDN's endpoint when it is not the --s3-endpoint",
    '  --shutdown-grace S  on SIGINT/SIGTERM, let transfers run S seconds at most (default 30)',
    '',
    'Settings come from --config, then the environment, then flags (each overrides the one before):',
    `  ${E.endpoint}, ${E.region}, ${E.bucket}, ${E.prefix}`,
    `  ${E.accessKey}, ${E.secretKey}    read-write keys: storage and CDN uploads`,
    `  ${E.cdnEndpoint}, ${E.cdnBucket}, ${E.cdnPrefix}`,
    `  ${E.readAccessKey}, ${E.readSecretKey}  read-only keys, handed to devices`,
    'Keys are never flags. Without a bucket: the embedded default (everything in DIR).',
    'Logs JSON lines to stdout; prints where parts go and `listening on URL` to stderr once ready.',
    'SIGINT or SIGTERM closes it gracefully: in-flight transfers finish, then exit 0.',
  ],
  options: {
    data: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'init-admin': { type: 'string' },
    'init-only': { type: 'boolean' },
    config: { type: 'string' },
    's3-endpoint': { type: 'string' },
    's3-region': { type: 'string' },
    's3-bucket': { type: 'string' },
    's3-prefix': { type: 'string' },
    'cdn-endpoint': { type: 'string' },
    'cdn-bucket': { type: 'string' },
    'cdn-prefix': { type: 'string' },
    'shutdown-grace': { type: 'string' },
  },
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const dataDir = resolve(typeof values.data === 'string' ? values.data : defaultDataDir());
    const host = typeof values.host === 'string' ? values.host : '127.0.0.1';
    const port = parsePort(typeof values.port === 'string' ? values.port : '8080');
    const adminEmail = values['init-admin'];
    if (values['init-only'] && typeof adminEmail !== 'string') {
      throw new UsageError('--init-only needs --init-admin EMAIL');
    }
    const str = (name: string) => (typeof values[name] === 'string' ? values[name] : undefined);
    // Read before any password prompt: a bad config fails at once.
    const settings = resolveServeSettings({
      ...(str('config') === undefined ? {} : { file: resolve(str('config') ?? '') }),
      env: process.env,
      flags: {
        s3Endpoint: str('s3-endpoint'),
        s3Region: str('s3-region'),
        s3Bucket: str('s3-bucket'),
        s3Prefix: str('s3-prefix'),
        cdnEndpoint: str('cdn-endpoint'),
        cdnBucket: str('cdn-bucket'),
        cdnPrefix: str('cdn-prefix'),
        shutdownGrace: str('shutdown-grace'),
      },
    });
    const scrypt = testScryptParams();
    if (scrypt !== undefined) io.err('warning: SLUICE_TEST_SCRYPT_N is set: weak password hashes');
    if (typeof adminEmail === 'string') {
      const password = await readPassword({
        env: 'SLUICE_ADMIN_PASSWORD',
        stdin: false,
        prompt: `password for the new ApiAdmin ${adminEmail}: `,
        confirm: true,
      });
      const admin = await initAdmin(dataDir, adminEmail, password, scrypt ? { scrypt } : {});
      io.err(`created ApiAdmin ${admin.email} in ${dataDir}`);
      if (values['init-only']) return EXIT.ok;
    }
    return serve(dataDir, host, port, scrypt, settings, io);
  },
};

async function serve(
  dataDir: string,
  host: string,
  port: number,
  scrypt: ReturnType<typeof testScryptParams>,
  settings: ServeSettings,
  io: Io,
): Promise<number> {
  const { origins, ...stores } = settings;
  let server: Awaited<ReturnType<typeof createServer>>;
  try {
    server = await createServer({
      dataDir,
      logger: true,
      ...stores,
      ...(scrypt ? { scrypt } : {}),
    });
  } catch (e) {
    throw explainSettingError(e, origins);
  }
  let url: string;
  try {
    url = await server.app.listen({ host, port });
  } catch (e) {
    await server.close();
    throw e;
  }
  // Handlers first: whoever waits for `listening on` may signal at once, and a signal that
  // arrives before Node has a listener for it kills the process with the default action.
  const stopped = new Promise<NodeJS.Signals>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  for (const line of describeStores(settings, dataDir)) io.err(line);
  io.err(`listening on ${url} (data ${dataDir})`);
  const signal = await stopped;
  io.err(`${signal}: closing (finishing in-flight requests)…`);
  // A second signal means "now": leave without waiting for slow transfers.
  const force = () => process.exit(EXIT.failed);
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  await server.close();
  io.err('closed');
  return EXIT.ok;
}

function defaultDataDir(): string {
  if (process.env.SLUICE_DATA_DIR) return process.env.SLUICE_DATA_DIR;
  if (process.env.XDG_DATA_HOME) return join(process.env.XDG_DATA_HOME, 'sluice');
  return join(homedir(), '.local', 'share', 'sluice');
}

function parsePort(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535) throw new UsageError(`bad port '${text}'`);
  return n;
}
