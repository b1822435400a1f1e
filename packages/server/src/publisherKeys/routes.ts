import type {
  PublisherKeyRequest,
  PublisherKeyResponse,
  PublisherKeysResponse,
} from '@sluice/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Store } from '../stores/store.js';
import { PublisherKeyService } from './service.js';

/** What the publisher-key routes need. */
export interface PublisherKeyRoutesDeps {
  store: Store;
}

const config = { operation: 'publisherKeys' } as const;

const registerBody = {
  type: 'object',
  required: ['publicKey'],
  properties: { publicKey: { type: 'string', minLength: 1, maxLength: 128 } },
} as const;

/** `GET` and `POST /me/publisher-keys`: the caller's own publisher keys (roles that upload). */
export async function publisherKeyRoutes(
  app: FastifyInstance,
  deps: PublisherKeyRoutesDeps,
): Promise<void> {
  const keys = new PublisherKeyService(deps.store);
  app.get('/me/publisher-keys', { config }, (request) => list(keys, request));
  app.post<{ Body: PublisherKeyRequest }>(
    '/me/publisher-keys',
    { config, schema: { body: registerBody } },
    (request, reply) => register(keys, request, reply),
  );
}

async function list(
  keys: PublisherKeyService,
  request: FastifyRequest,
): Promise<PublisherKeysResponse> {
  return { publisherKeys: await keys.list(request.user?.id ?? '') };
}

async function register(
  keys: PublisherKeyService,
  request: FastifyRequest<{ Body: PublisherKeyRequest }>,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const userId = request.user?.id ?? '';
  const { key, added } = await keys.register(userId, request.body.publicKey);
  if (added) {
    request.log.info(
      { event: 'publisherKey.added', userId, publicKey: key.publicKey },
      'publisher key registered',
    );
  }
  return reply.status(added ? 201 : 200).send({ publisherKey: key } satisfies PublisherKeyResponse);
}
