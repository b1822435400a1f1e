export { CdnError, type CdnErrorCode, isCdnError } from './cdnError.js';
export type { Downloader, DownloadOptions, DownloadProgress } from './downloader.js';
export { HttpRangeDriver, type HttpRangeDriverOptions } from './httpRangeDriver.js';
