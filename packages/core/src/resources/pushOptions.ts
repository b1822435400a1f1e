import type { DeliveredCdnConfig, HardwareFactorDigests } from '@sluice/protocol';
import type { PublisherPrivateKey } from '../format/manifestSignature.js';

/** Default cap of the small part in KiB (the split rule also caps it at 30% of the blob). */
export const DEFAULT_SMALL_SIZE_KB = 1024;

export interface PushProgress {
  /** Big-part bytes sent so far. */
  loaded: number;
  total: number;
}

export interface PushOptions {
  /** Cap of the small part in KiB (default 1024); see docs/FORMAT.md for the split rule. */
  smallSizeKB?: number;
  /** Big-part chunk size, a positive multiple of 16 (default: the server's CDN chunk size). */
  chunkSize?: number;
  /** Directory for the sealed parts (and bytes pushed from memory) while they are sent (default the OS temp directory). */
  tempDir?: string;
  /**
   * Password and hardware hash of the uploading account: needed only when the server keeps big
   * parts on an S3 CDN, to open the envelope that carries the uploader keys.
   */
  password?: string;
  hardware?: string;
  /** The uploading device's factor digests, as for pull (`hardwareFactorDigests()`). */
  hardwareFactors?: HardwareFactorDigests;
  /** The CDN settings with uploader keys, when the caller already has them. */
  cdn?: DeliveredCdnConfig;
  /** Also keep the sealed big part in this local cache (as a later pull would). */
  cacheDir?: string;
  signal?: AbortSignal;
  onProgress?: (progress: PushProgress) => void;
  /**
   * The publisher key (Ed25519 private key, or its PKCS#8 PEM) that signs the manifest. Without
   * one the v2 manifest goes unsigned: devices with a trust list refuse it.
   */
  signKey?: PublisherPrivateKey;
  /**
   * Whether the new version becomes the released one, the version devices get by default
   * (default true). False stores it for `pull --version N` and a later `releaseVersion`.
   */
  release?: boolean;
}
