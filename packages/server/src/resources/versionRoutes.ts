import {
  type ReleaseRequest,
  type ReleaseResponse,
  type RemoveVersionResponse,
  SluiceError,
  type VersionsResponse,
} from '@sluice/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { checkResourceName } from './resourceName.js';
import type { ResourceService } from './service.js';

type NameParams = { folder: string; name: string };
type NameRequest = FastifyRequest<{ Params: NameParams }>;

/** A version number: what the version columns and `?version=` take. */
export const VERSION_SCHEMA = { type: 'integer', minimum: 1, maximum: 999_999_999 } as const;

const releaseBody = {
  type: 'object',
  required: ['version'],
  additionalProperties: false,
  properties: { version: VERSION_SCHEMA },
} as const;

/** `DELETE /resources/:folder/:name`: `version` deletes that one only; `force` may delete the released one. */
export const removeQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    version: { type: 'string', pattern: '^[1-9][0-9]{0,8}$' },
    force: { type: 'string', enum: ['true', 'false'] },
  },
} as const;

export interface RemoveQuery {
  version?: string;
  force?: 'true' | 'false';
}

/**
 * The query of a DELETE, as sent: the schema's validator drops unknown keys, but a misspelt
 * `?verison=3` must not delete every version, so anything but `version` and `force` is a 400.
 */
export function checkRemoveQuery(url: string): void {
  const keys = [...new URL(url, 'http://query.invalid').searchParams.keys()];
  const unknown = keys.find((k) => k !== 'version' && k !== 'force');
  if (unknown !== undefined) {
    throw new SluiceError('ERR_BAD_REQUEST', `unknown query parameter ${unknown.slice(0, 32)}`);
  }
  if (keys.includes('force') && !keys.includes('version')) {
    throw new SluiceError('ERR_BAD_REQUEST', 'force applies to one version: give version too');
  }
}

/** The folder and name of a resource's path, each checked. */
export function namesOf(request: NameRequest): { folder: string; name: string } {
  return {
    folder: checkResourceName(request.params.folder, 'folder'),
    name: checkResourceName(request.params.name, 'name'),
  };
}

/** Versions of one resource: the list and the release pointer (rollback = releasing an older one). */
export function versionRoutes(app: FastifyInstance, resources: ResourceService): void {
  app.get<{ Params: NameParams }>(
    '/resources/:folder/:name/versions',
    { config: { operation: 'resources.list' } },
    (request): Promise<VersionsResponse> => {
      const { folder, name } = namesOf(request);
      return resources.versions(folder, name);
    },
  );
  app.post<{ Params: NameParams; Body: ReleaseRequest }>(
    '/resources/:folder/:name/release',
    { config: { operation: 'resources.release' }, schema: { body: releaseBody } },
    async (request): Promise<ReleaseResponse> => {
      const { folder, name } = namesOf(request);
      const released = await resources.release(folder, name, request.body.version);
      request.log.info(
        { event: 'resource.released', ...released, by: request.user?.id },
        'version released',
      );
      return released;
    },
  );
}

/** `DELETE /resources/:folder/:name?version=N[&force=true]`: one version. */
export async function removeOneVersion(
  resources: ResourceService,
  request: FastifyRequest<{ Params: NameParams; Querystring: RemoveQuery }>,
  reply: FastifyReply,
  version: number,
): Promise<FastifyReply> {
  const { folder, name } = namesOf(request);
  const force = request.query.force === 'true';
  const { left, ...removed } = await resources.removeVersion(
    { folder, name, version, force },
    request.log,
  );
  request.log.info(
    { event: 'resource.versionDeleted', ...removed, by: request.user?.id, left },
    'version deleted',
  );
  return reply.status(200).send(removed satisfies RemoveVersionResponse);
}
