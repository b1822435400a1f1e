// Where a pull's time goes, one stage per fresh process: `node pullStages.js` with a JSON job on
// stdin. Every stage opens the device envelope exactly as loadBigSmallResource does, then runs
// the big part through the same range driver (ranged GETs through the session, same chunk size
// and concurrency) doing progressively more of the pull's work per chunk:
//   transport  nothing (the bytes are received and dropped)
//   verify     + SHA-256 against the manifest (verifyChunk)
//   decrypt    + the chunk-wise decryptor (BlobChunkDecryptor), no output written
// and, for comparison, one stage outside the product:
//   reuse      receive only, over node:http, each worker reading its ranges straight into one
//              buffer it reuses (what HttpRangeDriver does with fetch + arrayBuffer, minus the
//              per-chunk allocations and copies)
// The full pull (pullChild.js) adds pwrite into a temp file, fsync and rename. Prints one JSON line.
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { HttpRangeDriver } from '@sluice/cdn';
import {
  BlobChunkDecryptor,
  chunkBlobOffset,
  deriveEnvelopeKey,
  type EnvelopeResource,
  envelopeAad,
  openEnvelope,
  Session,
  verifyChunk,
} from '@sluice/core';

export type PullStage = 'transport' | 'verify' | 'decrypt' | 'reuse';

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

/** A bearer token for the plain node:http stage (the session keeps its own private). */
async function accessToken(): Promise<string> {
  const res = await fetch(`${job.apiUrl.replace(/\/+$/, '')}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: job.email, password: job.password }),
  });
  if (res.status !== 200) throw new Error(`login answered ${res.status}`);
  return ((await res.json()) as { accessToken: string }).accessToken;
}

/** Ranged GETs, `concurrency` workers, each reading into one buffer of `chunkSize` it reuses. */
async function receiveReusing(
  url: string,
  size: number,
  chunkSize: number,
  concurrency: number,
  token: string,
): Promise<void> {
  const chunks = Math.ceil(size / chunkSize);
  let next = 0;
  const get = (buf: Buffer, start: number, end: number) =>
    new Promise<number>((resolve, reject) => {
      const req = request(
        url,
        { headers: { authorization: `Bearer ${token}`, range: `bytes=${start}-${end}` } },
        (res) => {
          if (res.statusCode !== 206) {
            res.resume();
            reject(new Error(`bytes ${start}-${end}: HTTP ${res.statusCode}`));
            return;
          }
          let at = 0;
          res.on('data', (d: Buffer) => {
            at += d.copy(buf, at);
          });
          res.on('end', () => resolve(at));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end();
    });
  const worker = async () => {
    const buf = Buffer.allocUnsafe(chunkSize);
    for (let i = next++; i < chunks; i = next++) {
      const start = i * chunkSize;
      const end = Math.min(size, start + chunkSize) - 1;
      const got = await get(buf, start, end);
      if (got !== end - start + 1) throw new Error(`bytes ${start}-${end}: got ${got}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, chunks) }, worker));
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
if (job.stage === 'reuse') {
  await receiveReusing(url, manifest.bigSize, manifest.chunkSize, 8, await accessToken());
} else {
  // The same transport loadBigSmallResource builds: ranged GETs through the session.
  const driver = new HttpRangeDriver({
    fetch: (_url, init) =>
      session.request('GET', path, {
        raw: true,
        idempotent: false,
        headers: (init?.headers ?? {}) as Record<string, string>,
        ...(init?.signal ? { signal: init.signal } : {}),
      }),
  });
  const decryptor = new BlobChunkDecryptor(manifest.blobSize, dataKey);
  let turn: Promise<unknown> = decryptor.push(0, small);
  await driver.download({
    url,
    size: manifest.bigSize,
    chunkSize: manifest.chunkSize,
    onChunk: async (index, data) => {
      if (job.stage === 'transport') return;
      verifyChunk(manifest, index, data);
      if (job.stage === 'verify') return;
      // One push at a time, as in loadBigSmallResource.
      const pieces = turn.then(() => decryptor.push(chunkBlobOffset(manifest, index), data));
      turn = pieces.catch(() => {});
      await pieces;
    },
  });
  await turn;
  if (job.stage === 'decrypt' && !decryptor.complete) throw new Error('decrypt stage incomplete');
}
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
