import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerMetrics } from './metrics.js';
import { MetricsAuth } from './metricsToken.js';
import type { Readiness, ReadinessReport } from './readiness.js';

/** What the operations endpoints need. */
export interface OpsDeps {
  readiness: Readiness;
  metrics: ServerMetrics;
  /** When set, `GET /metrics` requires it as a bearer token. */
  metricsToken: string | undefined;
}

// Polled every few seconds by balancers and Prometheus: their request lines stay out of the log.
const quiet = { config: { operation: 'public' }, logLevel: 'warn' } as const;

/**
 * `GET /healthz` (the process is up), `GET /readyz` (send traffic here) and `GET /metrics`
 * (Prometheus), and the hook that counts every request by route pattern and status. Install it
 * before the feature routes so that their requests are counted too.
 */
export async function installOps(app: FastifyInstance, deps: OpsDeps): Promise<void> {
  countRequests(app, deps.metrics);
  const auth = deps.metricsToken === undefined ? null : new MetricsAuth(deps.metricsToken);
  app.get('/healthz', quiet, (_request, reply) => noStore(reply).send({ status: 'ok' }));
  app.get('/readyz', quiet, (_request, reply) => ready(deps.readiness, reply));
  app.get('/metrics', quiet, (request, reply) => metrics(deps.metrics, auth, request, reply));
}

async function ready(readiness: Readiness, reply: FastifyReply): Promise<ReadinessReport> {
  const report = await readiness.report();
  noStore(reply).status(report.ready ? 200 : 503);
  return report;
}

async function metrics(
  m: ServerMetrics,
  auth: MetricsAuth | null,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<string> {
  auth?.require(request.headers.authorization);
  noStore(reply).type(m.contentType);
  return m.text();
}

function noStore(reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store');
}

/**
 * Counts each request when its connection is done with it ('close' also fires for a client that
 * gave up, which Fastify's onResponse never sees): 499 when no answer had been sent.
 */
function countRequests(app: FastifyInstance, m: ServerMetrics): void {
  app.addHook('onRequest', (request, reply, done) => {
    const started = performance.now();
    reply.raw.once('close', () => {
      const status = reply.raw.headersSent ? reply.raw.statusCode : 499;
      const route = request.routeOptions.url ?? 'unmatched';
      m.request(request.method, route, status, (performance.now() - started) / 1000);
    });
    done();
  });
}
