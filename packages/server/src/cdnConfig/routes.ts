import type { CdnConfigRequest, PublicCdnConfig, SealedEnvelope } from '@sluice/protocol';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  checkHardware,
  checkHardwareFactors,
  HARDWARE_FACTORS_SCHEMA,
  HARDWARE_SCHEMA,
} from '../auth/deviceBinding.js';
import type { BindingPolicy } from '../auth/driftPolicy.js';
import type { GuardRequest } from '../auth/guardRequest.js';
import type { LoginLimiter } from '../auth/loginLimiter.js';
import { PASSWORD_SCHEMA } from '../auth/passwordRules.js';
import { authorize } from '../auth/routeGuard.js';
import type { Store } from '../stores/store.js';
import type { ResolvedCdnConfig } from './resolveCdnConfig.js';
import { CdnConfigService } from './service.js';

const config = { operation: 'cdnConfig.read' } as const;

const requestBody = {
  type: 'object',
  required: ['password', 'hardware'],
  properties: {
    password: PASSWORD_SCHEMA,
    hardware: HARDWARE_SCHEMA,
    hardwareFactors: HARDWARE_FACTORS_SCHEMA,
    write: { type: 'boolean' },
  },
} as const;

/** What the CDN-config routes need. */
export interface CdnConfigRoutesDeps {
  cdn: ResolvedCdnConfig;
  store: Store;
  limiter: LoginLimiter;
  guardRequest: GuardRequest;
  binding: BindingPolicy;
}

/** The service and the guard every handler of the feature uses. */
interface Feature {
  service: CdnConfigService;
  guardRequest: GuardRequest;
}

/** `GET /cdn-config` (settings without keys) and `POST /cdn-config` (keys in a device envelope). */
export async function cdnConfigRoutes(
  app: FastifyInstance,
  deps: CdnConfigRoutesDeps,
): Promise<void> {
  const f: Feature = { service: new CdnConfigService(deps), guardRequest: deps.guardRequest };
  app.get('/cdn-config', { config }, () => readPublicConfig(f));
  app.post<{ Body: CdnConfigRequest }>(
    '/cdn-config',
    { config, schema: { body: requestBody } },
    (request) => issueConfig(f, request),
  );
}

async function readPublicConfig(f: Feature): Promise<PublicCdnConfig> {
  return f.service.publicConfig();
}

async function issueConfig(
  f: Feature,
  request: FastifyRequest<{ Body: CdnConfigRequest }>,
): Promise<SealedEnvelope> {
  const hardware = checkHardware(request.body.hardware);
  const hardwareFactors = checkHardwareFactors(request.body.hardwareFactors);
  const write = request.body.write === true;
  // Refused before the password is even checked: no binding, no limiter count.
  if (write) await authorize(f.guardRequest, request, 'cdnConfig.write');
  const { password } = request.body;
  const caller = { userId: request.user?.id ?? '', address: request.ip };
  return f.service.issue(caller, { password, hardware, hardwareFactors, write }, request.log);
}
