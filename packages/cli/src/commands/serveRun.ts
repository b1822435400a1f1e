// What `sluice serve` does once its flags are parsed (commands/serve.ts): loaded only then.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  createServer,
  DEFAULT_SCRYPT_PARAMS,
  describeDatabaseUrl,
  initAdmin,
  SCHEMA_VERSION,
  Store,
} from '@sluice/server';
import { EXIT, type Io, UsageError } from '../command.js';
import { readPassword } from '../password.js';
import { describeStores } from '../serveSettings/describeStores.js';
import { explainSettingError } from '../serveSettings/explainSettingError.js';
import { resolveServeSettings, type ServeSettings } from '../serveSettings/resolveServeSettings.js';
import type { ServeValues } from './serve.js';

/** Serves (or only creates the first admin, or only migrates) as `values` say. */
export async function runServe(values: ServeValues, io: Io): Promise<number> {
  const dataDir = resolve(values.data ?? defaultDataDir());
  const port = parsePort(values.port);
  const adminEmail = values['init-admin'];
  if (values['init-only'] && adminEmail === undefined) {
    throw new UsageError('--init-only needs --init-admin EMAIL');
  }
  if (values['password-stdin'] && adminEmail === undefined) {
    throw new UsageError('--password-stdin needs --init-admin EMAIL (it reads that password)');
  }
  // Read before any password prompt: a bad config fails at once.
  const settings = resolveServeSettings({
    file: values.config === undefined ? undefined : resolve(values.config),
    env: process.env,
    flags: {
      s3Endpoint: values['s3-endpoint'],
      s3Region: values['s3-region'],
      s3Bucket: values['s3-bucket'],
      s3Prefix: values['s3-prefix'],
      cdnEndpoint: values['cdn-endpoint'],
      cdnBucket: values['cdn-bucket'],
      cdnPrefix: values['cdn-prefix'],
      shutdownGrace: values['shutdown-grace'],
      drainDelay: values['drain-delay'],
      trustProxy: values['trust-proxy'],
      database: values.database,
      tlsCert: values['tls-cert'],
      tlsKey: values['tls-key'],
      logLevel: values['log-level'],
      bindingMaxDrift: values['binding-max-drift'],
      bindingMinMatch: values['binding-min-match'],
      bindingDriftCooldown: values['binding-drift-cooldown'],
      keep: values.keep,
      leaseDays: values['lease-days'],
    },
  });
  if (values['migrate-only']) return migrateOnly(dataDir, settings.databaseUrl, io);
  const logN = settings.scrypt?.logN;
  if (logN !== undefined && logN < DEFAULT_SCRYPT_PARAMS.logN) {
    io.err(
      `warning: passwordHash.logN ${logN} is below the default ${DEFAULT_SCRYPT_PARAMS.logN}: ` +
        'password hashes are cheaper to guess',
    );
  }
  if (adminEmail !== undefined) {
    const password = await readPassword({
      env: 'SLUICE_ADMIN_PASSWORD',
      stdin: values['password-stdin'],
      prompt: `password for the new ApiAdmin ${adminEmail}: `,
      confirm: true,
    });
    const admin = await initAdmin(dataDir, adminEmail, password, {
      scrypt: settings.scrypt,
      databaseUrl: settings.databaseUrl,
    });
    io.err(`created ApiAdmin ${admin.email} in ${storeName(dataDir, settings.databaseUrl)}`);
    if (values['init-only']) return EXIT.ok;
  }
  return serve(dataDir, values.host, port, settings, io);
}

async function serve(
  dataDir: string,
  host: string,
  port: number,
  settings: ServeSettings,
  io: Io,
): Promise<number> {
  const { origins, logLevel, ...options } = settings;
  let server: Awaited<ReturnType<typeof createServer>>;
  try {
    // One server in this process: it may export the process-wide metrics too.
    const logger = { level: logLevel };
    server = await createServer({ dataDir, processMetrics: true, ...options, logger });
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
  if (settings.keepVersions) {
    io.err(
      `keeping the newest ${settings.keepVersions} versions of each resource (and the released one)`,
    );
  }
  if ((await server.store.users.count()) === 0) {
    io.err(
      'warning: no users yet, so nobody can log in: stop this server and start it once with ' +
        '`--init-admin EMAIL` (add `--init-only` to exit after) to create the first ApiAdmin; ' +
        'that admin then adds the others with `sluice user create`',
    );
  }
  io.err(`listening on ${url} (data ${dataDir})`);
  const signal = await stopped;
  const delay = settings.drainDelayMs ? `, serving ${settings.drainDelayMs / 1000} s more` : '';
  io.err(`${signal}: closing (/readyz 503${delay}, then finishing in-flight requests)…`);
  // A second signal means "now": leave without waiting for slow transfers.
  const force = () => process.exit(EXIT.failed);
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  await server.close();
  io.err('closed');
  return EXIT.ok;
}

/** Opens the store (which applies pending migrations), says what it did, closes it. */
async function migrateOnly(dataDir: string, databaseUrl: string | undefined, io: Io) {
  const store = await Store.open({ dataDir, databaseUrl });
  try {
    const version = await store.schemaVersion();
    io.err(
      `${storeName(dataDir, databaseUrl)}: schema at version ${version} (${SCHEMA_VERSION} is current)`,
    );
  } finally {
    await store.close();
  }
  return EXIT.ok;
}

function storeName(dataDir: string, databaseUrl: string | undefined): string {
  return databaseUrl === undefined ? dataDir : describeDatabaseUrl(databaseUrl);
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
