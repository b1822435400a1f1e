import { LEASE_CHECK_MAX, type LeaseCheckRequest, type LeaseCheckResponse } from '@sluice/protocol';
import type { FastifyInstance } from 'fastify';
import type { LeaseService } from './service.js';

const signedLease = {
  type: 'object',
  required: ['kid', 'payload', 'signature'],
  properties: {
    kid: { type: 'string', maxLength: 128 },
    payload: { type: 'string', maxLength: 8192 },
    signature: { type: 'string', maxLength: 128 },
  },
} as const;

const checkBody = {
  type: 'object',
  required: ['leases'],
  properties: { leases: { type: 'array', maxItems: LEASE_CHECK_MAX, items: signedLease } },
} as const;

/** `POST /leases/check`: which of the caller's offline leases were revoked since they were issued. */
export async function leaseRoutes(
  app: FastifyInstance,
  deps: { leases: LeaseService },
): Promise<void> {
  app.post<{ Body: LeaseCheckRequest }>(
    '/leases/check',
    { config: { operation: 'leases.check' }, schema: { body: checkBody } },
    async (request): Promise<LeaseCheckResponse> => {
      const answer = await deps.leases.check(request.user?.id ?? '', request.body.leases);
      if (answer.revoked.length > 0) {
        request.log.info(
          { event: 'lease.revoked', userId: request.user?.id, revoked: answer.revoked },
          'offline leases revoked',
        );
      }
      return answer;
    },
  );
}
