import {
  CDN_CONFIG_AAD,
  CDN_CONFIG_RESOURCE,
  type CdnConfigRequest,
  deriveEnvelopeKey,
  type PublicCdnConfig,
  type SealedEnvelope,
  sealEnvelope,
} from '@sluice/protocol';
import type { FastifyBaseLogger } from 'fastify';
import { bindDevice } from '../auth/deviceBinding.js';
import type { BindingPolicy } from '../auth/driftPolicy.js';
import {
  checkTokenPassword,
  type TokenCaller,
  type TokenPasswordDeps,
} from '../auth/tokenPassword.js';
import { publicCdnConfig, type ResolvedCdnConfig } from './resolveCdnConfig.js';

/** The envelope format carries a data key; the CDN-config envelope has none and sends zeros. */
const NO_DATA_KEY = Buffer.alloc(32);

export interface CdnConfigServiceDeps extends TokenPasswordDeps {
  cdn: ResolvedCdnConfig;
  binding: BindingPolicy;
}

/** The CDN settings: without keys for anyone signed in, with them only in a device envelope. */
export class CdnConfigService {
  constructor(private readonly deps: CdnConfigServiceDeps) {}

  publicConfig(): PublicCdnConfig {
    return publicCdnConfig(this.deps.cdn);
  }

  /**
   * The config with the downloader keys (and the uploader keys when `write`; the caller checked
   * the role), sealed for the device after its password was checked and the device bound.
   */
  async issue(
    caller: TokenCaller,
    request: CdnConfigRequest & { write: boolean },
    log: FastifyBaseLogger,
  ): Promise<SealedEnvelope> {
    const { cdn } = this.deps;
    const { password, hardware, hardwareFactors, write } = request;
    const user = await checkTokenPassword(this.deps, caller, password, log);
    const claim = { hash: hardware, factors: hardwareFactors };
    await bindDevice(this.deps.store, user, claim, this.deps.binding, log);
    const config =
      cdn.kind === 'http'
        ? publicCdnConfig(cdn)
        : {
            ...publicCdnConfig(cdn),
            downloader: cdn.downloader,
            uploader: write ? cdn.uploader : undefined,
          };
    const plain = Buffer.from(JSON.stringify(config), 'utf8');
    const key = await deriveEnvelopeKey(user.email, password, hardware);
    try {
      const envelope = sealEnvelope(
        key,
        { resource: CDN_CONFIG_RESOURCE, manifest: null, dataKey: NO_DATA_KEY, small: plain },
        CDN_CONFIG_AAD,
      );
      log.info(
        { event: 'cdnConfig.issued', userId: user.id, write, kind: cdn.kind },
        'CDN config issued',
      );
      return envelope;
    } finally {
      key.fill(0);
      plain.fill(0);
    }
  }
}
