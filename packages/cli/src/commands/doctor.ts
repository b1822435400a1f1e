import { existsSync } from 'node:fs';
import {
  backend,
  environmentProxy,
  type HardwareInfo,
  hardwareInfo,
  isHttpError,
  isSluiceError,
  type PublicCdnConfig,
  publicCdnConfig,
  Session,
} from '@sluice/core';
import { apiUrl } from '../apiUrl.js';
import { defineCommand, EXIT, type Io } from '../command.js';
import { commonFlags } from '../commonFlags.js';
import { authPath, readConfig } from '../config.js';
import { networkReason } from '../explainFailure.js';
import { storedSession } from '../storedSession.js';

/** Clock skew beyond which token expiry checks start to misfire. */
const SKEW_WARN_SECONDS = 30;

interface ServerCheck {
  url: string;
  /** The forward proxy the environment names for this server (no credentials), when there is one. */
  proxy?: string;
  reachable: boolean;
  status?: number;
  latencyMs?: number;
  /** Server clock minus local clock, seconds (from the `Date` header: ±1 s resolution). */
  clockSkewSeconds?: number;
  error?: string;
  /** Where big parts live (`GET /cdn-config`), when logged in to this server. */
  cdn?: PublicCdnConfig | { error: string };
}

export const doctorCommand = defineCommand({
  name: 'doctor',
  summary: 'Check this machine: crypto backend, hardware hash, server reachability and clock skew',
  usage: '[--server URL] [--json]',
  flags: {
    server: {
      ...commonFlags.server,
      help: 'check this server (default: the one `sluice login` stored, if any)',
    },
    json: { ...commonFlags.json, help: 'print one JSON object' },
  },
  notes: [
    'When logged in to that server, also shows its CDN (kind, endpoint, bucket; never keys).',
    'Exit 1 when a server was to be checked and could not be reached.',
  ],
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const b = backend();
    const hw = await hardwareInfo();
    const serverUrl = values.server === undefined ? readConfig()?.server : apiUrl(values.server);
    const server = serverUrl === undefined ? undefined : await checkServer(serverUrl);
    if (server?.reachable) server.cdn = await checkCdn(server.url);
    const warnings = skewWarnings(server);
    const report: DoctorReport = {
      backend: b.kind,
      reason: b.reason,
      node: process.version,
      openssl: process.versions.openssl,
      platform: `${process.platform}-${process.arch}`,
      hardware: {
        hash: hw.hash,
        source: hw.source,
        factors: hw.factors,
        // How many factor digests a pull sends (null: none, only the exact hash binds).
        factorDigests: hw.digests === undefined ? null : Object.keys(hw.digests).length,
      },
      server,
      warnings,
    };
    if (values.json) io.out(JSON.stringify(report));
    else printReport(io, report);
    return server !== undefined && !server.reachable ? EXIT.failed : EXIT.ok;
  },
});

interface DoctorReport {
  backend: string;
  reason: string;
  node: string;
  openssl: string;
  platform: string;
  hardware: Pick<HardwareInfo, 'hash' | 'source' | 'factors'> & { factorDigests: number | null };
  server: ServerCheck | undefined;
  warnings: string[];
}

function skewWarnings(server: ServerCheck | undefined): string[] {
  const skew = server?.clockSkewSeconds;
  if (server === undefined || skew === undefined || Math.abs(skew) <= SKEW_WARN_SECONDS) return [];
  return [
    `clock skew ${skew} s with ${server.url} exceeds ${SKEW_WARN_SECONDS} s: ` +
      "fix this machine's time (NTP), or tokens will be refused as expired or not yet valid",
  ];
}

function printReport(io: Io, report: DoctorReport): void {
  const { hardware: hw, server } = report;
  io.out(`crypto backend  ${report.backend} (${report.reason})`);
  io.out(`node            ${report.node}, OpenSSL ${report.openssl}, ${report.platform}`);
  io.out(`hardware hash   ${hw.hash}${hw.source === 'env' ? ` (from ${overrides()})` : ''}`);
  for (const [name, value] of Object.entries(hw.factors)) io.out(`  ${name.padEnd(20)}${value}`);
  io.out(`factor digests  ${describeDigests(hw.factorDigests)}`);
  const via = server?.proxy === undefined ? '' : ` via proxy ${server.proxy}`;
  if (server === undefined) io.out('server          none (log in, or pass --server URL)');
  else if (!server.reachable)
    io.out(`server          ${server.url}${via} UNREACHABLE: ${server.error}`);
  else {
    io.out(
      `server          ${server.url}${via} reachable, ${server.latencyMs} ms (HTTP ${server.status})`,
    );
    const skew = server.clockSkewSeconds;
    io.out(`clock skew      ${skew === undefined ? 'unknown (no Date header)' : `${skew} s`}`);
    if (server.cdn !== undefined) io.out(`cdn             ${describeCdn(server.cdn)}`);
  }
  for (const w of report.warnings) io.err(`warning: ${w}`);
}

/** What the digests a pull sends allow (the server's floor is 3 matching factors). */
function describeDigests(count: number | null): string {
  if (count === null) return 'none sent: the hash is chosen, so only that exact hash binds';
  if (count < 3) return `${count} sent: too few to tolerate a changed factor (3 must match)`;
  return `${count} sent: the server may accept this device after a factor changes`;
}

/** The SLUICE_HARDWARE_* variables that set the identity shown. */
function overrides(): string {
  const set = ['SLUICE_HARDWARE_HASH', 'SLUICE_HARDWARE_FACTORS'].filter((n) => process.env[n]);
  return set.join(' and ');
}

/** How long the probe waits for an answer. */
const PROBE_TIMEOUT_MS = 10_000;

/** Statuses a forward proxy answers with when it cannot reach the server behind it. */
const PROXY_GATEWAY_STATUSES = new Set([502, 503, 504]);

/**
 * One unauthenticated GET of the JWKS (a route every sluice server answers without a token), sent
 * the way every other command's requests go: through the environment's proxy (`HTTPS_PROXY`,
 * `NO_PROXY`, …) when it names one, without retries.
 */
async function checkServer(url: string): Promise<ServerCheck> {
  const proxy = await environmentProxy(new URL(url));
  const via = proxy === undefined ? {} : { proxy };
  const session = new Session({ apiUrl: url, retries: 0, verifyTokens: false });
  const t0 = performance.now();
  try {
    const res = await session.request('GET', '/.well-known/jwks.json', {
      auth: false,
      raw: true,
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    const latencyMs = Math.round(performance.now() - t0);
    // The Date header is stamped while the request is served: compare it with the midpoint.
    const localMid = Date.now() - latencyMs / 2;
    await res.arrayBuffer();
    const date = res.headers.get('date');
    const serverTime = date === null ? Number.NaN : Date.parse(date);
    return {
      url,
      ...via,
      reachable: true,
      status: res.status,
      latencyMs,
      clockSkewSeconds: Number.isNaN(serverTime)
        ? undefined
        : Math.round((serverTime - localMid) / 1000),
    };
  } catch (e) {
    return { url, ...via, ...probeFailure(e, proxy, Math.round(performance.now() - t0)) };
  }
}

/** What a failed probe says: reachable with an error status, or not reachable and why. */
function probeFailure(
  e: unknown,
  proxy: string | undefined,
  latencyMs: number,
): Pick<ServerCheck, 'reachable' | 'status' | 'latencyMs' | 'error'> {
  if (isHttpError(e) && e.status > 0) {
    // Through a proxy, a gateway error is the proxy saying the server did not answer it.
    if (proxy !== undefined && PROXY_GATEWAY_STATUSES.has(e.status)) {
      return { reachable: false, status: e.status, error: `the proxy answered HTTP ${e.status}` };
    }
    return { reachable: true, status: e.status, latencyMs };
  }
  if (isHttpError(e, 'ERR_NETWORK')) {
    const reason = networkReason(e.serverMessage);
    return { reachable: false, error: proxy === undefined ? reason : `proxy: ${reason}` };
  }
  if (isSluiceError(e) && e.code === 'ERR_ABORTED') {
    return { reachable: false, error: `no answer within ${PROBE_TIMEOUT_MS / 1000} s` };
  }
  return { reachable: false, error: (e as Error).message };
}

/** `GET /cdn-config` with the stored login, when it is a login to `url`; else nothing. */
async function checkCdn(url: string): Promise<ServerCheck['cdn']> {
  const config = readConfig();
  if (config?.server !== url || !existsSync(authPath())) return undefined;
  try {
    const { session } = storedSession();
    return await publicCdnConfig(session, { signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    // A lapsed login is not this machine's fault: say nothing rather than a false alarm.
    if (code === 'ERR_NOT_LOGGED_IN' || code === 'ERR_UNAUTHORIZED') return undefined;
    return { error: `${(e as Error).message}${typeof code === 'string' ? ` (${code})` : ''}` };
  }
}

function describeCdn(cdn: NonNullable<ServerCheck['cdn']>): string {
  if ('error' in cdn) return `unknown: ${cdn.error}`;
  if (cdn.kind === 'http') return `http (big parts from this API), chunks of ${cdn.chunkSize} B`;
  return (
    `s3 ${cdn.endpoint} bucket ${cdn.bucket}${cdn.prefix ? ` prefix ${cdn.prefix}/` : ''} ` +
    `(region ${cdn.region}), chunks of ${cdn.chunkSize} B`
  );
}
