import type { LoggerOptions, ServerOptions } from './settings.js';

/** Log fields that could ever hold a secret; pino replaces them wherever they appear. */
export const LOG_REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-auth-token"]',
  // @fastify/multipart logs the request headers at trace level under its own key (F6).
  '*.headers.authorization',
  '*.headers.cookie',
  '*.headers["x-auth-token"]',
  '*.headers["x-signature"]',
  'req.body',
  'body',
  'password',
  '*.password',
  'passwordHash',
  '*.passwordHash',
  'accessToken',
  '*.accessToken',
  'refreshToken',
  '*.refreshToken',
  'token',
  '*.token',
  'secretAccessKey',
  '*.secretAccessKey',
];

/** Fastify's `logger` option: off, or pino at `level` with the secrets redacted. */
export function loggerConfig(logger: ServerOptions['logger']) {
  if (logger === undefined || logger === false) return false;
  const opts: LoggerOptions = logger === true ? {} : logger;
  return {
    level: opts.level ?? 'info',
    redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' },
    stream: opts.stream,
  };
}
