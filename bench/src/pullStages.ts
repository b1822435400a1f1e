// Where a pull's time goes, one stage per fresh process: `node pullStages.js` with a JSON job on
// stdin. Every stage opens the device envelope exactly as pull does, then runs
// the big part through the same range driver (`apiRangeDriver`: ranged GETs with the session's
// token over node:http, 4 in flight, one reused buffer per worker) doing progressively more of the pull's work per chunk:
//   transport  nothing (the bytes are received and dropped)
//   verify     + SHA-256 against the manifest (verifyChunkAsync, as the pull does)
//   decrypt    + the chunk-wise decryptor (BlobChunkDecryptor), no output written
// The full pull (pullChild.js) adds pwrite into a temp file, fsync and rename. Prints one JSON line.
import { readFileSync } from 'node:fs';
import {
  apiRangeDriver,
  BlobChunkDecryptor,
  chunkBlobOffset,
  deriveEnvelopeKey,
  type EnvelopeResource,
  envelopeAad,
  openEnvelope,
  Session,
  verifyChunkAsync,
} from '@sluice/core';

export type PullStage = 'transport' | 'verify' | 'decrypt';

export interface PullStagesJob {
  stage: PullStage;
  apiUrl: string;
  email: string;
  password: string;
  name: string;
  folder: string;
  hardware: string;
}

export interface PullStagesResult {
  stage: PullStage;
  /** Envelope request, scrypt KDF and opening. */
  envelopeSeconds: number;
  /** The big part through the driver with this stage's per-chunk work. */
  bigSeconds: number;
  /** CPU seconds (user + system, all threads) of this process over both. */
  cpuSeconds: number;
  peakRssMb: number;
}

async function readStdin(): Promise<string> {
  let text = '';
  for await (const d of process.stdin) text += d;
  return text;
}

const job = JSON.parse(await readStdin()) as PullStagesJob;
const session = new Session({ apiUrl: job.apiUrl });
session.setCredentials(job.email, job.password);
await session.login();
const email = session.user?.email;
if (email === undefined) throw new Error('login did not yield a user');

const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const since = () => Number(process.hrtime.bigint() - t0) / 1e9;

const sealed = await session.request<Record<string, unknown>>(
  'POST',
  `/resources/get/${encodeURIComponent(job.folder)}`,
  { json: { fileName: job.name, password: job.password, hardware: job.hardware } },
);
const resource = sealed.resource as EnvelopeResource;
const envelopeKey = await deriveEnvelopeKey(email, job.password, job.hardware);
const { manifest, dataKey, small } = openEnvelope(envelopeKey, sealed, envelopeAad(resource));
if (manifest === null) throw new Error('the resource has no big part');
const envelopeSeconds = since();

const path = `/resources/${encodeURIComponent(job.folder)}/${encodeURIComponent(job.name)}/big?version=${resource.version}`;
const url = `${session.apiUrl.replace(/\/+$/, '')}${path}`;
// The transport pull builds for the API's big-part route.
const driver = await apiRangeDriver(session);
const decryptor = new BlobChunkDecryptor(manifest.blobSize, dataKey);
let turn: Promise<unknown> = decryptor.push(0, small);
await driver.download({
  url,
  size: manifest.bigSize,
  chunkSize: manifest.chunkSize,
  concurrency: 4,
  reuseBuffers: true,
  onChunk: async (index, data) => {
    if (job.stage === 'transport') return;
    await verifyChunkAsync(manifest, index, data);
    if (job.stage === 'verify') return;
    // One push at a time, as in pull.
    const pieces = turn.then(() => decryptor.push(chunkBlobOffset(manifest, index), data));
    turn = pieces.catch(() => {});
    await pieces;
  },
});
await turn;
if (job.stage === 'decrypt' && !decryptor.complete) throw new Error('decrypt stage incomplete');

const seconds = since();
const cpu = process.cpuUsage(cpu0);
const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
if (!hwm) throw new Error('VmHWM not found in /proc/self/status');
const out: PullStagesResult = {
  stage: job.stage,
  envelopeSeconds,
  bigSeconds: seconds - envelopeSeconds,
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
  peakRssMb: Number(hwm[1]) / 1024,
};
process.stdout.write(`${JSON.stringify(out)}\n`);
