export type { Downloader, DownloadOptions, DownloadProgress } from './engine/downloader.js';
export { HttpRangeDriver, type HttpRangeDriverOptions } from './http/httpRangeDriver.js';
export { type ResumeIdentity, ResumeState, type ResumeStateOptions } from './resumeState.js';
export type { S3BucketSettings, S3ObjectHead } from './s3/s3Bucket.js';
export type { S3ClientOptions, S3RequestInfo } from './s3/s3Client.js';
export {
  S3Downloader,
  type S3DownloaderOptions,
  type S3DownloadOptions,
} from './s3/s3Downloader.js';
export type { S3ListedObject, S3ListOptions, S3OpenUpload } from './s3/s3Listing.js';
export {
  S3Objects,
  type UploadOptions,
  type UploadProgress,
  type UploadResult,
} from './s3/s3Objects.js';
export type { UploadSource } from './s3/uploadSource.js';
