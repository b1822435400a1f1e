import {
  CDN_CONFIG_AAD,
  type CdnConfigRequest as CdnConfigBody,
  type DeliveredCdnConfig,
  deriveEnvelopeKey,
  openEnvelope,
  type PublicCdnConfig,
  parseDeliveredCdnConfig,
  SluiceError,
} from '@sluice/protocol';
import type { Session } from '../http/session.js';

export interface CdnConfigRequest extends CdnConfigBody {
  signal?: AbortSignal;
}

/** `GET /cdn-config`: the kind, endpoint, bucket and chunk size, without any key. */
export async function publicCdnConfig(
  session: Session,
  options: { signal?: AbortSignal } = {},
): Promise<PublicCdnConfig> {
  const body = await session.request<unknown>('GET', '/cdn-config', { signal: options.signal });
  return parseDeliveredCdnConfig(body) as PublicCdnConfig;
}

/**
 * `POST /cdn-config`: the settings with their keys, opened from the device envelope with the
 * account's password and this device's hardware hash.
 */
export async function fetchCdnConfig(
  session: Session,
  options: CdnConfigRequest,
): Promise<DeliveredCdnConfig> {
  const { password, hardware, hardwareFactors, write, signal } = options;
  const body: CdnConfigBody = { password, hardware, hardwareFactors };
  if (write) body.write = true;
  const sealed = await session.request<unknown>('POST', '/cdn-config', { json: body, signal });
  const email = session.user?.email;
  if (email === undefined) throw new SluiceError('ERR_NOT_LOGGED_IN', 'no signed-in user');
  const key = await deriveEnvelopeKey(email, password, hardware);
  let small: Buffer;
  try {
    ({ small } = openEnvelope(key, sealed, CDN_CONFIG_AAD));
  } finally {
    key.fill(0);
  }
  try {
    return parseDeliveredCdnConfig(JSON.parse(small.toString('utf8')));
  } finally {
    small.fill(0);
  }
}

/** The prefix under which a config's CDN keeps big parts (none for the API's own route). */
export function cdnPrefix(config: PublicCdnConfig | DeliveredCdnConfig): string | null {
  return config.kind === 's3' ? config.prefix : null;
}
