// One plain AWS SDK baseline of bench:pull --s3 in a fresh process: `node pullS3Child.js` with a
// JSON job on stdin (the S3 keys are in no process listing). The client is built first
// (untimed), with the settings the product's S3 client uses; then either a single-stream
// GetObject piped into a file + fsync, or a lib-storage Upload (its defaults) of a file stream.
// Prints one JSON line: seconds, bytes, CPU seconds and peak RSS (VmHWM) of this process.
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { fsyncPath } from './benchFiles.js';

export interface S3Target {
  endpoint: string;
  region: string;
  bucket: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

export type PullS3ChildJob = S3Target &
  ({ op: 'getObject'; key: string; to: string } | { op: 'upload'; key: string; src: string });

export interface PullS3ChildResult {
  seconds: number;
  /** Bytes written to the file (getObject) or read from it (upload). */
  bytes: number;
  /** CPU seconds (user + system, all threads) of this process during the operation. */
  cpuSeconds: number;
  peakRssMb: number;
}

async function readStdin(): Promise<string> {
  let text = '';
  for await (const d of process.stdin) text += d;
  return text;
}

const job = JSON.parse(await readStdin()) as PullS3ChildJob;
const client = new S3Client({
  endpoint: job.endpoint,
  region: job.region,
  credentials: job.credentials,
  forcePathStyle: true,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});

const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
let bytes: number;
if (job.op === 'getObject') {
  const out = await client.send(new GetObjectCommand({ Bucket: job.bucket, Key: job.key }));
  if (!(out.Body instanceof Readable)) throw new Error(`GetObject of ${job.key} gave no stream`);
  await pipeline(out.Body, createWriteStream(job.to));
  await fsyncPath(job.to);
  bytes = (await stat(job.to)).size;
} else {
  const upload = new Upload({
    client,
    params: { Bucket: job.bucket, Key: job.key, Body: createReadStream(job.src) },
  });
  await upload.done();
  bytes = (await stat(job.src)).size;
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
client.destroy();
const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
if (!hwm) throw new Error('VmHWM not found in /proc/self/status');
const result: PullS3ChildResult = {
  seconds,
  bytes,
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
  peakRssMb: Number(hwm[1]) / 1024,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
