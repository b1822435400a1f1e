import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import type { S3Credentials } from '@sluice/protocol';
import { proxyAgentFor } from '../http/proxyAgent.js';

/** One S3 request attempt, as seen by `S3ClientOptions.onRequest`. */
export interface S3RequestInfo {
  /** The SDK command, e.g. "GetObjectCommand". */
  command: string;
  key?: string;
  range?: string;
}

export interface S3ClientOptions {
  /** Attempts per S3 call inside the SDK (default 3); downloads retry chunks on top of that. */
  maxAttempts?: number;
  /** A request whose socket is idle this long fails and is retried (default 30000 ms). */
  requestTimeoutMs?: number;
  /** Called for every HTTP attempt (retries included), e.g. to count GETs. */
  onRequest?: (request: S3RequestInfo) => void;
}

/** A path-style client with kept-alive connections, as Ceph RGW, MinIO and AWS S3 all accept. */
export function createS3Client(
  endpoint: string,
  region: string | undefined,
  credentials: S3Credentials | undefined,
  options: S3ClientOptions,
): S3Client {
  const agentOptions = { keepAlive: true, maxSockets: 64 };
  // The endpoint is fixed: the environment's proxy for it (or none, NO_PROXY) is chosen once.
  const proxy = proxyAgentFor(new URL(endpoint));
  const client = new S3Client({
    endpoint,
    region: region ?? 'us-east-1',
    forcePathStyle: true,
    credentials: credentials && {
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
    },
    maxAttempts: options.maxAttempts ?? 3,
    // Ceph RGW answers 411 to a streamed body sent with a checksum trailer.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      requestTimeout: options.requestTimeoutMs ?? 30_000,
      connectionTimeout: 10_000,
      httpAgent: proxy ?? new Agent(agentOptions),
      httpsAgent: proxy ?? new HttpsAgent(agentOptions),
    },
  });
  const onRequest = options.onRequest;
  if (onRequest) {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: unknown; Range?: unknown };
        onRequest({
          command: context.commandName ?? 'unknown',
          key: typeof input.Key === 'string' ? input.Key : undefined,
          range: typeof input.Range === 'string' ? input.Range : undefined,
        });
        return next(args);
      },
      // inside the retry middleware, so every attempt is seen
      { step: 'finalizeRequest', priority: 'low', name: 'sluiceRequestCounter' },
    );
  }
  return client;
}
