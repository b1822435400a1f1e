// `@sluice/server/defaults`: the server's defaults and setting names that a caller describes
// (the CLI's `serve --help`) without loading the server itself: nothing here imports Fastify,
// the stores or the AWS SDK, so `sluice --version` does not pay for them.
export { LOG_LEVELS } from './app/logLevels.js';
export { DEFAULT_SCRYPT_PARAMS } from './auth/passwordHash.js';
