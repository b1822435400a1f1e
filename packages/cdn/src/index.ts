export type { Downloader, DownloadOptions, DownloadProgress } from './downloader.js';
export { HttpRangeDriver, type HttpRangeDriverOptions } from './httpRangeDriver.js';
export { type ResumeIdentity, ResumeState, type ResumeStateOptions } from './resumeState.js';
export {
  CdnManager,
  type CdnManagerOptions,
  type CdnSettings,
  type S3DownloadOptions,
  type S3RequestInfo,
  type UploadOptions,
  type UploadProgress,
  type UploadResult,
} from './s3/cdnManager.js';
