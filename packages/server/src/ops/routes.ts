import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Readiness, ReadinessReport } from './readiness.js';

/** What the operations endpoints need. */
export interface OpsDeps {
  readiness: Readiness;
}

// Polled every few seconds by balancers: their request lines stay out of the log.
const quiet = { config: { operation: 'public' }, logLevel: 'warn' } as const;

/** `GET /healthz` (the process is up) and `GET /readyz` (send traffic here). */
export async function installOps(app: FastifyInstance, deps: OpsDeps): Promise<void> {
  app.get('/healthz', quiet, (_request, reply) => noStore(reply).send({ status: 'ok' }));
  app.get('/readyz', quiet, (_request, reply) => ready(deps.readiness, reply));
}

async function ready(readiness: Readiness, reply: FastifyReply): Promise<ReadinessReport> {
  const report = await readiness.report();
  noStore(reply).status(report.ready ? 200 : 503);
  return report;
}

function noStore(reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store');
}
