import { SluiceError } from '@sluice/protocol';
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import type { GuardMetadata, GuardRequest, UserContext } from './guardRequest.js';
import { isOperation, type Operation } from './permissions.js';

/** `public` routes authenticate by other means (a password, a refresh token) or not at all. */
export type RouteOperation = Operation | 'public';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The guarded operation of the route; every route must name one (or `public`). */
    operation?: RouteOperation;
  }
  interface FastifyRequest {
    /** The caller, from the live user store; set by the guard on non-public routes. */
    user: UserContext | null;
  }
}

export interface RouteInfo {
  method: string;
  url: string;
  operation: RouteOperation;
}

/**
 * Makes the role table binding for every route: a route registered without `config.operation`
 * fails at startup, and a guarded route gets an onRequest hook that runs `guardRequest` and
 * answers 401/403 before the body is parsed or the handler runs. Returns the live list of routes and their operations.
 */
export function installRouteGuard(app: FastifyInstance, guardRequest: GuardRequest): RouteInfo[] {
  const routes: RouteInfo[] = [];
  app.decorateRequest('user', null);
  app.addHook('onRoute', (route: RouteOptions) => {
    const operation = (route.config as { operation?: unknown } | undefined)?.operation;
    if (operation !== 'public' && !isOperation(operation)) {
      throw new Error(`route ${String(route.method)} ${route.url} names no guarded operation`);
    }
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD') routes.push({ method, url: route.url, operation });
    }
    if (operation === 'public') return;
    const guard = async (request: FastifyRequest): Promise<void> => {
      request.user = await authorize(guardRequest, request, operation);
    };
    // onRequest runs before the body is read: strangers cannot make us parse (or store) a body.
    route.onRequest = [guard, ...[route.onRequest ?? []].flat()];
  });
  return routes;
}

/** Runs the guard for `request` and returns the caller, or throws the guard's 401/403. */
export async function authorize(
  guardRequest: GuardRequest,
  request: FastifyRequest,
  operation: Operation,
  metadata?: GuardMetadata,
): Promise<UserContext> {
  const result = await guardRequest(request.headers.authorization, operation, metadata);
  if (result.isAuthorized && result.context !== null) return result.context;
  const error = result.error ?? { code: 'ERR_FORBIDDEN' as const, message: 'forbidden' };
  throw new SluiceError(error.code, error.message);
}
