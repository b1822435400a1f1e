import { S3Objects } from '@sluice/cdn';
import Fastify, { type FastifyInstance } from 'fastify';
import { createGuard, type GuardRequest } from '../auth/guardRequest.js';
import { loadOrCreateSigningKeys, type SigningKeys } from '../auth/keys.js';
import { MemoryLimiterState, StoreLimiterState } from '../auth/limiterState.js';
import { LoginLimiter } from '../auth/loginLimiter.js';
import { installRouteGuard, type RouteInfo } from '../auth/routeGuard.js';
import { authRoutes } from '../auth/routes.js';
import { TokenService } from '../auth/tokens.js';
import { cdnConfigRoutes } from '../cdnConfig/routes.js';
import { leaseRoutes } from '../leases/routes.js';
import { LeaseService } from '../leases/service.js';
import { installOpenApi } from '../openapi/routes.js';
import { ServerMetrics } from '../ops/metrics.js';
import { Readiness } from '../ops/readiness.js';
import { installOps } from '../ops/routes.js';
import { storageCheck } from '../ops/storageCheck.js';
import { parcelRoutes } from '../parcels/routes.js';
import { publisherKeyRoutes } from '../publisherKeys/routes.js';
import { type EnvelopeCache, openEnvelopeCache } from '../resources/envelopeCache.js';
import { resourceRoutes } from '../resources/routes.js';
import type { CdnObjects } from '../resources/service.js';
import { BlobStore } from '../stores/blobStore.js';
import { loadOrCreateMasterKey } from '../stores/masterKey.js';
import type { PartStorage } from '../stores/partStorage.js';
import { S3PartStore } from '../stores/s3PartStore.js';
import { Store } from '../stores/store.js';
import { storeSweeper } from '../sweeper/storeSweep.js';
import type { Sweeper } from '../sweeper/sweeper.js';
import { userRoutes } from '../users/routes.js';
import { ConnectionDrainer } from './connectionDrainer.js';
import { frameworkErrors, installErrorHandlers } from './errorHandler.js';
import { checkKeyAgreement } from './keyAgreement.js';
import { loggerConfig } from './logger.js';
import { RequestLog } from './requestLog.js';
import { resolveSettings, type ServerOptions, type ServerSettings } from './settings.js';
import { serverTimeoutOptions } from './transferTimeouts.js';
import { TransferWatchdog } from './transferWatchdog.js';

export interface SluiceServer {
  /** The Fastify instance, not yet listening (routes may still be added before `listen`). */
  app: FastifyInstance;
  /** The check every route uses, for other services in the same process. */
  guardRequest: GuardRequest;
  store: Store;
  /** The data directory's blob files (with S3 storage only its temp area is used). */
  blobs: BlobStore;
  /** Where small and big parts are kept: `blobs`, or the S3 bucket of the `storage` option. */
  storage: PartStorage;
  keys: SigningKeys;
  tokens: TokenService;
  /** Every route with the operation it is guarded by (what docs/API.md documents). */
  routes: readonly RouteInfo[];
  /** What repeated envelopes skip scrypt with (docs/API.md), or null when it is off. */
  envelopeCache: EnvelopeCache | null;
  /** Removes what crashed uploads and failed deletions leave (runs on `sweepIntervalMs`). */
  sweeper: Sweeper;
  /** This server's Prometheus registry and counters (`GET /metrics`). */
  metrics: ServerMetrics;
  /**
   * Turns `GET /readyz` 503, keeps serving for `drainDelayMs`, then stops accepting connections,
   * closes idle ones at once, lets in-flight requests end (up to `shutdownGraceMs`, then destroys
   * their connections), closes the store and releases the data directory. Calling it again
   * returns the same promise.
   */
  close(): Promise<void>;
}

/** What was opened so far, released in reverse order on close (or when building fails). */
type Releases = (() => Promise<void>)[];

/** Builds the resource API over the data directory: store, keys, tokens, guard and routes. */
export async function createServer(options: ServerOptions): Promise<SluiceServer> {
  const settings = resolveSettings(options);
  const store = await Store.open({ dataDir: settings.dataDir, databaseUrl: settings.databaseUrl });
  const opened: Releases = [];
  try {
    return await build(settings, store, opened);
  } catch (e) {
    for (const release of opened.reverse()) await release().catch(() => {});
    await store.close();
    throw e;
  }
}

async function build(
  settings: ServerSettings,
  store: Store,
  opened: Releases,
): Promise<SluiceServer> {
  const keys = await loadOrCreateSigningKeys(settings.dataDir);
  const tokens = new TokenService(store, keys, settings.tokens);
  const guardRequest = createGuard(store, tokens);
  const { blobs, partStorage, cdnObjects } = await openStorage(settings, opened);
  const orphans = await partStorage.removeUnreferenced(await store.resources.referencedBlobIds());
  const masterKey = await loadOrCreateMasterKey(settings.dataDir);
  if (store.backend === 'postgres') {
    await checkKeyAgreement(store, { signingKid: keys.kid, masterKey }, settings.dataDir);
  }

  const app = createApp(settings);
  const drainer = new ConnectionDrainer(app.server);
  const metrics = new ServerMetrics(() => drainer.requestsInFlight);
  if (settings.processMetrics) metrics.collectProcessMetrics();
  // With a database every instance counts in the same table; alone, memory is enough.
  const limiterState =
    store.backend === 'postgres' ? new StoreLimiterState(store) : new MemoryLimiterState();
  const limiter = new LoginLimiter(settings.loginLimits, limiterState, metrics.loginRefused);
  metrics.observeDatabasePool(() => store.db.stats());
  const storage = storageCheck(settings.storage, blobs);
  opened.push(async () => storage.close());
  const database = { name: 'database', check: () => store.ping() };
  const readiness = new Readiness([storage.check, database, ...settings.readinessChecks], app.log);
  if (orphans.length > 0) {
    app.log.warn(
      { event: 'blobs.orphansRemoved', count: orphans.length },
      'unreferenced blobs removed',
    );
  }
  const routes = installRouteGuard(app, guardRequest);
  const envelopeCache = settings.envelopeCache ? openEnvelopeCache(app) : null;
  await installOpenApi(app);
  await installOps(app, { readiness, metrics, metricsToken: settings.metricsToken });
  await registerFeatures(app, {
    settings,
    store,
    keys,
    tokens,
    guardRequest,
    limiter,
    partStorage,
    masterKey,
    cdnObjects,
    envelopeCache,
    metrics,
  });
  const sweeper = startSweeper(settings, store, cdnObjects, app, opened);
  metrics.observeSweeper(() => ({ ...sweeper.totals }));

  let closed: Promise<void> | undefined;
  const close = async () => {
    readiness.startDraining();
    await drainDelay(app, settings.drainDelayMs);
    await shutDown(app, drainer, settings.shutdownGraceMs, opened, store);
  };
  return {
    app,
    guardRequest,
    store,
    blobs,
    storage: partStorage,
    keys,
    tokens,
    routes,
    envelopeCache,
    metrics,
    sweeper,
    close() {
      closed ??= close();
      return closed;
    },
  };
}

/**
 * The sweeper of what crashed uploads and failed deletions leave (stores/sweeper), on its
 * interval unless that is 0; stopped on close, before the store closes.
 */
function startSweeper(
  settings: ServerSettings,
  store: Store,
  cdnObjects: CdnObjects | null,
  app: FastifyInstance,
  opened: Releases,
): Sweeper {
  const { sweeper, close } = storeSweeper({
    store,
    dataDir: settings.dataDir,
    storage: settings.storage,
    cdnObjects,
    graceMs: settings.sweepGraceMs,
    log: app.log,
  });
  opened.push(async () => close());
  if (settings.sweepIntervalMs > 0) {
    sweeper.start(settings.sweepIntervalMs);
    opened.push(() => sweeper.stop());
    // Rows nothing needs any more (indexed deletes, harmless on every instance at once).
    const prune = setInterval(() => {
      pruneRecords(store).catch((e: unknown) => {
        app.log.warn({ event: 'store.pruneFailed', err: e }, 'expired records not pruned');
      });
    }, settings.sweepIntervalMs);
    prune.unref();
    opened.push(async () => clearInterval(prune));
  }
  return sweeper;
}

/** Deletes expired logins, limiter entries and used parcel token ids; returns how many. */
export async function pruneRecords(store: Store, now = Date.now()): Promise<number> {
  const families = await store.families.removeAllExpired(new Date(now).toISOString());
  const limits = await store.limiter.removeExpired(now);
  const tokens = await store.parcels.forgetTokens(now / 1000);
  return families + limits + tokens;
}

/** What the features share: one store, one signing key, one guard, one limiter, one storage. */
interface Shared {
  settings: ServerSettings;
  store: Store;
  keys: SigningKeys;
  tokens: TokenService;
  guardRequest: GuardRequest;
  limiter: LoginLimiter;
  partStorage: PartStorage;
  masterKey: Buffer;
  cdnObjects: CdnObjects | null;
  envelopeCache: EnvelopeCache | null;
  metrics: ServerMetrics;
}

/** Registers each feature's routes with the part of `shared` it needs. */
async function registerFeatures(app: FastifyInstance, shared: Shared): Promise<void> {
  const { settings, store, keys, tokens, guardRequest, limiter, partStorage } = shared;
  const { scrypt, cdn, bigPartLimit, serverTiming, keepVersions } = settings;
  const cache = shared.envelopeCache;
  // Password changes and resets forget the user's cached envelope keys.
  const caches = { forgetUser: (userId: string) => cache?.forgetUser(userId) };
  await app.register(authRoutes, { store, keys, tokens, limiter, scrypt, caches });
  await app.register(userRoutes, { store, scrypt, guardRequest, caches });
  await app.register(publisherKeyRoutes, { store });
  const leases = new LeaseService({ store, keys, leaseSeconds: settings.offlineLeaseSeconds });
  await app.register(leaseRoutes, { leases });
  await app.register(resourceRoutes, {
    leases,
    store,
    partStorage,
    masterKey: shared.masterKey,
    cdnObjects: shared.cdnObjects,
    limiter,
    bigPartLimit,
    keepVersions,
    cache,
    serverTiming,
    meter: shared.metrics,
    binding: settings.deviceBinding,
  });
  const binding = settings.deviceBinding;
  await app.register(cdnConfigRoutes, { cdn, store, limiter, guardRequest, binding });
  await app.register(parcelRoutes, {
    keys,
    store,
    issuer: tokens.issuer,
    dataDir: settings.dataDir,
    partStorage,
    sizeLimit: bigPartLimit,
  });
}

/** The blob files, the part storage (they, or the S3 bucket) and an S3 CDN's bucket. */
async function openStorage(
  settings: ServerSettings,
  opened: Releases,
): Promise<{ blobs: BlobStore; partStorage: PartStorage; cdnObjects: CdnObjects | null }> {
  const blobs = await BlobStore.open(settings.dataDir);
  const partStorage =
    settings.storage.kind === 's3' ? await S3PartStore.open(settings.storage, blobs) : blobs;
  opened.push(() => partStorage.close());
  const { cdn } = settings;
  if (cdn.kind !== 's3') return { blobs, partStorage, cdnObjects: null };
  const bucket = new S3Objects({
    endpoint: cdn.endpoint,
    region: cdn.region,
    bucket: cdn.bucket,
    uploader: cdn.uploader,
  });
  opened.push(async () => bucket.destroy());
  return { blobs, partStorage, cdnObjects: { bucket, prefix: cdn.prefix } };
}

/** Fastify with the API's limits, parser rules and error shape. */
function createApp(settings: ServerSettings): FastifyInstance {
  const app = Fastify({
    // HTTPS when a certificate is configured (null: plain HTTP).
    https: settings.tls ?? null,
    logger: loggerConfig(settings.logger),
    logController: new RequestLog(),
    bodyLimit: settings.bodyLimit,
    trustProxy: settings.trustProxy,
    exposeHeadRoutes: false,
    // Fields documented as strings must be strings: Ajv's default coercion would turn a number
    // into a password or a one-element array into an email (docs/SECURITY.md, F1).
    ajv: { customOptions: { coerceTypes: false } },
    // Names are checked by the routes (up to 128 characters, docs/API.md); the router's default
    // limit of 100 would cut longer valid names off before they get there (F4).
    routerOptions: { maxParamLength: 1024 },
    frameworkErrors,
    ...serverTimeoutOptions(settings.timeouts),
  }) as unknown as FastifyInstance;
  installErrorHandlers(app);
  new TransferWatchdog(settings.timeouts).install(app);
  return app;
}

/**
 * The time a balancer needs to see `GET /readyz` fail and move traffic away; the server answers
 * as usual meanwhile. Skipped when the server never listened.
 */
async function drainDelay(app: FastifyInstance, ms: number): Promise<void> {
  if (ms === 0 || !app.server.listening) return;
  app.log.info({ event: 'shutdown.draining', drainDelayMs: ms }, 'not ready; still serving');
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Closes Fastify while the drainer ends idle connections, cuts off what still runs after
 * `graceMs`, then releases what was opened and the store.
 */
async function shutDown(
  app: FastifyInstance,
  drainer: ConnectionDrainer,
  graceMs: number,
  opened: Releases,
  store: Store,
): Promise<void> {
  const fastifyClosed = app.close();
  drainer.drain();
  const cutOff = setTimeout(() => {
    const cut = drainer.destroyAll();
    if (cut > 0) {
      app.log.warn(
        { event: 'shutdown.cutOff', requests: cut, graceMs },
        'requests still running at the end of the shutdown grace period were cut off',
      );
    }
  }, graceMs);
  try {
    await fastifyClosed;
  } finally {
    clearTimeout(cutOff);
  }
  for (const release of opened.reverse()) await release();
  await store.close();
}
