import {
  deriveEnvelopeKey,
  type EnvelopeLeaseFields,
  type EnvelopeRequest,
  type EnvelopeResource,
  envelopeAad,
  isEnvelopeResource,
  openEnvelope,
  SluiceError,
} from '@sluice/protocol';
import type { Session } from '../http/session.js';
import { type PullOptions, runApi } from './pullOptions.js';
import { checkVersion } from './versions.js';

export type EnvelopePayload = ReturnType<typeof openEnvelope>;

/**
 * Asks the API for the device envelope of `folder/name` and opens it under the key of (email,
 * password, hardware): the resource version it describes, and its manifest, data key, small part
 * and CDN key. The envelope key is zeroed once used; the caller zeroes the data key.
 */
export async function openDeviceEnvelope(
  session: Session,
  folder: string,
  name: string,
  options: PullOptions,
): Promise<{
  resource: EnvelopeResource;
  payload: EnvelopePayload;
  lease: Partial<EnvelopeLeaseFields>;
}> {
  const { password, hardware, hardwareFactors, signal, version } = options;
  const json: EnvelopeRequest = { fileName: name, password, hardware, hardwareFactors };
  if (version !== undefined) json.version = checkVersion(version);
  const sealed = await runApi(options, () =>
    session.request<Record<string, unknown>>(
      'POST',
      `/resources/get/${encodeURIComponent(folder)}`,
      { json, signal },
    ),
  );
  const resource = readResource(sealed.resource);
  if (version !== undefined && resource.version !== version) {
    throw new SluiceError(
      'ERR_BAD_ENVELOPE',
      `device envelope rejected: version ${version} was asked for, the envelope is of version ${resource.version}`,
    );
  }
  const email = session.user?.email;
  if (email === undefined) throw new SluiceError('ERR_NOT_LOGGED_IN', 'no signed-in user');
  const key = await (options.envelopeKey?.(email) ?? deriveEnvelopeKey(email, password, hardware));
  try {
    const payload = openEnvelope(key, sealed, envelopeAad(resource));
    // The offline lease and the server's clock (EnvelopeLeaseFields), checked by LeaseKeeper.
    return {
      resource,
      payload,
      lease: { lease: sealed.lease as never, serverTime: sealed.serverTime as never },
    };
  } finally {
    key.fill(0);
  }
}

function readResource(v: unknown): EnvelopeResource {
  if (!isEnvelopeResource(v)) {
    throw new SluiceError('ERR_BAD_ENVELOPE', 'device envelope rejected: no resource description');
  }
  return { folder: v.folder, name: v.name, version: v.version };
}
