import { deriveEnvelopeKey, sealEnvelope } from '@sluice/core';
import { CDN_CONFIG_AAD, CDN_CONFIG_RESOURCE, type CdnConfigRequest } from '@sluice/protocol';
import type { FastifyInstance } from 'fastify';
import { bindDevice, checkHardware } from '../auth/deviceBinding.js';
import { checkEnvelopePassword } from '../auth/envelopePassword.js';
import { PASSWORD_MAX_LENGTH } from '../auth/userAccounts.js';
import { publicCdnConfig } from '../cdn/cdnConfig.js';
import type { ServerContext } from '../serverContext.js';
import { authorize } from './routeGuard.js';

/** The envelope format carries a data key; the CDN-config envelope has none and sends zeros. */
const NO_DATA_KEY = Buffer.alloc(32);

/** `GET /cdn-config` (settings without keys) and `POST /cdn-config` (keys in a device envelope). */
export async function cdnConfigRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  app.get('/cdn-config', { config: { operation: 'cdnConfig.read' } }, async () =>
    publicCdnConfig(ctx.cdn),
  );

  app.post<{ Body: CdnConfigRequest }>(
    '/cdn-config',
    {
      config: { operation: 'cdnConfig.read' },
      schema: {
        body: {
          type: 'object',
          required: ['password', 'hardware'],
          properties: {
            password: { type: 'string', minLength: 1, maxLength: PASSWORD_MAX_LENGTH * 4 },
            hardware: { type: 'string', maxLength: 1024 },
            write: { type: 'boolean' },
          },
        },
      },
    },
    async (request) => {
      const hardware = checkHardware(request.body.hardware);
      const write = request.body.write === true;
      // Refused before the password is even checked: no binding, no limiter count.
      if (write) await authorize(ctx.guardRequest, request, 'cdnConfig.write');
      const user = await checkEnvelopePassword(ctx, request, request.body.password);
      await bindDevice(ctx, request, user, hardware);

      const cdn = ctx.cdn;
      const config =
        cdn.kind === 'http'
          ? publicCdnConfig(cdn)
          : {
              ...publicCdnConfig(cdn),
              downloader: cdn.downloader,
              ...(write ? { uploader: cdn.uploader } : {}),
            };
      const plain = Buffer.from(JSON.stringify(config), 'utf8');
      const key = await deriveEnvelopeKey(user.email, request.body.password, hardware);
      try {
        const envelope = sealEnvelope(
          key,
          { resource: CDN_CONFIG_RESOURCE, manifest: null, dataKey: NO_DATA_KEY, small: plain },
          CDN_CONFIG_AAD,
        );
        request.log.info(
          { event: 'cdnConfig.issued', userId: user.id, write, kind: cdn.kind },
          'CDN config issued',
        );
        return envelope;
      } finally {
        key.fill(0);
        plain.fill(0);
      }
    },
  );
}
