import type { Downloader } from '@sluice/cdn';
import { cdnObjectKey, type EnvelopeResource, SluiceError } from '@sluice/protocol';
import type { Session } from '../http/session.js';
import { apiRangeDriver } from './apiRangeDriver.js';
import { fromTransport, type Transport } from './bigPartSource.js';
import { cdnPrefix, fetchCdnConfig } from './cdnConfig.js';
import { type PullOptions, runApi } from './pullOptions.js';

/**
 * From the API itself 4 ranges in flight (8 were no faster on loopback and held more memory); an
 * S3 CDN gets its driver's default (8) for the higher latency.
 */
const API_CONCURRENCY = 4;

/**
 * How a pull fetches the big part of `resource`: with the caller's downloader if it gave one,
 * else from the S3 CDN when the envelope names a CDN key, else from the API's own big-part route.
 */
export async function bigPartTransport(
  session: Session,
  resource: EnvelopeResource,
  cdnKey: string | null | undefined,
  options: PullOptions,
): Promise<Transport> {
  const concurrency = options.concurrency ?? API_CONCURRENCY;
  if (options.downloader !== undefined) {
    const url = options.bigUrl ?? apiBigPartUrl(session, resource);
    return { downloader: options.downloader, url, concurrency };
  }
  if (typeof cdnKey === 'string') {
    return { ...(await s3Transport(session, cdnKey, options)), concurrency: options.concurrency };
  }
  const downloader = await apiRangeDriver(session);
  return { downloader, url: apiBigPartUrl(session, resource), concurrency };
}

function apiBigPartUrl(session: Session, { folder, name, version }: EnvelopeResource): string {
  const path = `/resources/${encodeURIComponent(folder)}/${encodeURIComponent(name)}/big?version=${version}`;
  return `${session.apiUrl.replace(/\/+$/, '')}${path}`;
}

/** The S3 CDN that holds the big part under `key`, with the account's read keys. */
async function s3Transport(
  session: Session,
  key: string,
  options: PullOptions,
): Promise<{ downloader: Downloader; url: string }> {
  const { password, hardware, hardwareFactors, signal } = options;
  const config =
    options.cdn ??
    (await runApi(options, () =>
      fetchCdnConfig(session, { password, hardware, hardwareFactors, signal }),
    ));
  if (config.kind !== 's3') {
    throw new SluiceError(
      'ERR_BAD_RESPONSE',
      `the big part is on an S3 CDN but the server's CDN config is '${config.kind}'`,
    );
  }
  if (config.downloader === undefined) {
    throw new SluiceError('ERR_CDN', 'the CDN config holds no read keys');
  }
  const { S3Downloader } = await import('@sluice/cdn');
  let downloader: Downloader;
  try {
    downloader = new S3Downloader({
      endpoint: config.endpoint,
      region: config.region,
      bucket: config.bucket,
      downloader: config.downloader,
    });
  } catch (e) {
    throw fromTransport(e);
  }
  return { downloader, url: cdnObjectKey(cdnPrefix(config), key) };
}
