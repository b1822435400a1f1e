import { randomBytes } from 'node:crypto';
import type { Readable, Transform } from 'node:stream';
import { S3Objects } from '@sluice/cdn';
import { cdnObjectKey, type S3Credentials } from '@sluice/protocol';
import {
  checkBucket,
  checkEndpoint,
  checkPrefix,
  credentialsOf,
  nonEmpty,
} from '../cdn/cdnConfig.js';
import type { BlobStore } from './blobStore.js';
import type { PartStorage, PendingBlob } from './partStorage.js';

/** The `storage` server option for S3: the server's own bucket and read-write keys. */
export interface S3StorageConfig {
  kind: 's3';
  /** `http(s)://host[:port]`, no path. */
  endpoint: string;
  region: string;
  bucket: string;
  /** `/`-separated key prefix; parts are stored at `<prefix>/<id>`. */
  prefix?: string;
  /** Keys that may read, write and delete in the bucket. Devices never get them. */
  credentials: S3Credentials;
}

const PART_ID = /^[0-9a-f]{32}$/;

/**
 * Small parts (and big parts uploaded through the API) as objects in an S3 bucket, named
 * `<prefix>/<random id>`. Uploads are received into the data directory's temp area first (so
 * the routes can check them against the manifest), then uploaded and the temp file removed.
 */
export class S3PartStore implements PartStorage {
  readonly kind = 's3' as const;
  readonly bucket: string;
  private readonly s3: S3Objects;
  private readonly prefix: string | null;
  private readonly temp: BlobStore;

  private constructor(s3: S3Objects, prefix: string | null, temp: BlobStore) {
    this.s3 = s3;
    this.bucket = s3.bucket;
    this.prefix = prefix;
    this.temp = temp;
  }

  /** Checks the settings and creates the bucket if it does not exist. */
  static async open(config: S3StorageConfig, temp: BlobStore): Promise<S3PartStore> {
    const endpoint = checkEndpoint(config.endpoint, 'storage.endpoint');
    const region = nonEmpty(config.region, 'storage.region');
    const bucket = checkBucket(config.bucket, 'storage.bucket');
    const prefix = checkPrefix(config.prefix, 'storage.prefix');
    const credentials = credentialsOf(config.credentials, 'storage.credentials');
    const s3 = new S3Objects({ endpoint, region, bucket, uploader: credentials });
    try {
      await s3.ensureBucket();
    } catch (e) {
      s3.destroy();
      throw e;
    }
    return new S3PartStore(s3, prefix, temp);
  }

  /** The object key of a part. */
  key(id: string): string {
    if (!PART_ID.test(id)) throw new Error('invalid part id');
    return cdnObjectKey(this.prefix, id);
  }

  receive(source: Readable, ...transforms: Transform[]): Promise<PendingBlob> {
    return this.temp.receive(source, ...transforms);
  }

  async commit(pending: PendingBlob): Promise<string> {
    const id = randomBytes(16).toString('hex');
    try {
      const stored = await this.s3.upload(this.key(id), pending.path, {
        contentLength: pending.size,
      });
      if (stored.size !== pending.size) {
        await this.s3.remove(this.key(id));
        throw new Error(`stored part ${id} is ${stored.size} bytes, not ${pending.size}`);
      }
    } finally {
      await pending.discard();
    }
    return id;
  }

  async readAll(id: string, maxBytes: number): Promise<Buffer> {
    const stream = await this.s3.openRead(this.key(id));
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of stream) {
        size += (chunk as Buffer).length;
        if (size > maxBytes) throw new Error(`part ${id} is over ${maxBytes} bytes`);
        chunks.push(chunk as Buffer);
      }
    } finally {
      stream.destroy();
    }
    return Buffer.concat(chunks, size);
  }

  openRead(id: string, range?: { start: number; end: number }): Promise<Readable> {
    return this.s3.openRead(this.key(id), { range });
  }

  remove(id: string): Promise<void> {
    return this.s3.remove(this.key(id));
  }

  /** The bucket may be shared by several servers: nothing is swept (see docs/API.md). */
  async removeUnreferenced(): Promise<string[]> {
    return [];
  }

  async close(): Promise<void> {
    this.s3.destroy();
  }
}
