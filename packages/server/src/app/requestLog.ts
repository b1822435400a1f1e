import { type FastifyReply, type FastifyRequest, LogController } from 'fastify';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The level of the route's request line (default `info`). The big-part route logs at
     * `debug`: a pull sends one request per 8 MiB range.
     */
    requestLogLevel?: 'info' | 'debug';
  }
}

/**
 * One log line per request, when it has been answered (method, URL, client, status, time),
 * instead of Fastify's two (one on arrival, one on completion); at the route's
 * `requestLogLevel`. A route whose `logLevel` is above that level (the ops routes: `warn`) logs
 * none; a failed response is an error line, whatever the route.
 */
export class RequestLog extends LogController {
  override incomingRequest(): void {}

  /** The request line says 404 already. */
  override routeNotFound(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    const line = { req: request, res: reply, responseTime: reply.elapsedTime };
    if (error) {
      reply.log.error({ ...line, err: error }, 'request errored');
      return;
    }
    const level = request.routeOptions.config?.requestLogLevel ?? 'info';
    reply.log[level](line, 'request completed');
  }
}
