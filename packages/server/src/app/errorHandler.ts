import type { ErrorBody } from '@sluice/protocol';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { API_ERROR_STATUS, type ApiErrorCode, ApiErrorWithBody, isApiError } from '../errors.js';

interface ErrorAnswer {
  status: number;
  code: ApiErrorCode;
  message: string;
  retryAfterSeconds?: number;
  /** Fields the answer carries beside `error` and `code` (ApiErrorWithBody). */
  extra?: Readonly<Record<string, number | string>>;
}

/** Status → code for errors that carry only a status; the first (generic) code of a status wins. */
const STATUS_CODES: Readonly<Record<number, ApiErrorCode>> = Object.fromEntries(
  Object.entries(API_ERROR_STATUS)
    .reverse()
    .map(([code, status]) => [status, code as ApiErrorCode]),
);

/** Fastify's `frameworkErrors`: a URL the router cannot decode gets the API's error shape (F2). */
export function frameworkErrors(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  request.log.info({ code: error.code }, 'malformed request');
  const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
  // Without echoing the path.
  const body: ErrorBody = {
    error: tooLong ? 'path parameter too long' : 'malformed URL',
    code: 'ERR_BAD_REQUEST',
  };
  void reply.status(400).send(body);
}

/**
 * Every error and unknown route answers `{ error, code }`; 5xx are logged as errors. A handler
 * that fails after its answer went out (a slow body's 408 from the transfer watchdog, a client
 * gone) has no one to tell: that is logged at info, not as Fastify's "Promise errored" error.
 */
export function installErrorHandlers(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const handler = route.handler;
    route.handler = async function (this: FastifyInstance, request, reply) {
      try {
        return await handler.call(this, request, reply);
      } catch (e) {
        if (!reply.sent) throw e;
        const error = e as { code?: unknown; message?: unknown };
        request.log.info(
          {
            event: 'request.aborted',
            code: error.code,
            reason: String(error.message).slice(0, 200),
          },
          'the request failed after its answer was sent',
        );
        return reply;
      }
    };
  });
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const { status, code, message, retryAfterSeconds, extra } = describeError(error, app);
    if (clientGone(request, reply)) {
      // Not a fault of ours: the upload (or download) simply ended early. No stack, no alarm.
      request.log.info(
        { event: 'request.aborted', code: error.code, reason: error.message.slice(0, 200) },
        'the client closed the connection before the answer',
      );
      // Answered already (a timeout's 408) or cut in the middle of the body: nothing to add.
      if (reply.raw.headersSent) return reply;
    } else if (status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code, status }, message);
    if (retryAfterSeconds !== undefined) reply.header('retry-after', String(retryAfterSeconds));
    return reply.status(status).send({ ...extra, error: message, code } satisfies ErrorBody);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const body: ErrorBody = {
      error: `no route ${request.method} ${path.slice(0, 200)}`,
      code: 'ERR_NOT_FOUND',
    };
    return reply.status(404).send(body);
  });
}

/**
 * Whether the connection was closed under the request (the client gave up, or a timeout cut it
 * off): its body stream was aborted or the socket is gone, so no answer can reach anyone.
 */
function clientGone(request: FastifyRequest, reply: FastifyReply): boolean {
  return (
    request.raw.readableAborted || reply.raw.destroyed || request.raw.socket?.destroyed === true
  );
}

/**
 * Turns any error into the `{ error, code }` answer. Parser messages are replaced by fixed ones:
 * a JSON syntax error quotes the body, which may hold a password.
 */
function describeError(error: FastifyError, app: FastifyInstance): ErrorAnswer {
  if (isApiError(error)) {
    return {
      status: error.statusCode,
      code: error.code,
      message: error.message,
      retryAfterSeconds: error.retryAfterSeconds,
      extra: error instanceof ApiErrorWithBody ? error.extra : undefined,
    };
  }
  if (error.validation !== undefined) {
    return { status: 400, code: 'ERR_BAD_REQUEST', message: error.message };
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        status: 413,
        code: 'ERR_TOO_LARGE',
        message: `request body exceeds ${app.initialConfig.bodyLimit} bytes`,
      };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, code: 'ERR_BAD_REQUEST', message: 'request body is not valid JSON' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        status: 415,
        code: 'ERR_UNSUPPORTED_MEDIA_TYPE',
        message: 'unsupported content type; send application/json',
      };
  }
  const status = typeof error.statusCode === 'number' ? error.statusCode : 500;
  if (status >= 400 && status < 500) {
    return { status, code: STATUS_CODES[status] ?? 'ERR_BAD_REQUEST', message: 'bad request' };
  }
  return { status: 500, code: 'ERR_INTERNAL', message: 'internal server error' };
}
