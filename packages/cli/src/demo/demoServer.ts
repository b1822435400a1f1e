import { Worker } from 'node:worker_threads';
import { SluiceError, type SluiceErrorCode } from '@sluice/core';
import type { DemoServerData, DemoServerReply, DemoServerRequest } from './demoServerWorker.js';

/** The demo's embedded server, running on a worker thread of this process. */
export interface DemoServer {
  url: string;
  /** Flips one byte of the stored big part of `folder/name` (what a tampered CDN would serve). */
  tamperBigPart(folder: string, name: string): Promise<void>;
  close(): Promise<void>;
}

export async function startDemoServer(data: DemoServerData): Promise<DemoServer> {
  const worker = new Worker(new URL('./demoServerWorker.js', import.meta.url), {
    workerData: data,
  });
  let exited = false;
  worker.once('exit', () => {
    exited = true;
  });
  // One request at a time: each waits for the worker's next reply.
  const next = () =>
    new Promise<DemoServerReply>((resolve, reject) => {
      const onMessage = (m: DemoServerReply) => {
        cleanup();
        if (m.type === 'error') {
          reject(new SluiceError((m.code ?? 'ERR_SERVER') as SluiceErrorCode, m.message));
        } else resolve(m);
      };
      const onError = (e: Error) => {
        cleanup();
        reject(e);
      };
      const onExit = (code: number) => {
        cleanup();
        reject(new SluiceError('ERR_SERVER', `the demo server thread exited (${code})`));
      };
      const cleanup = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
  const ask = async (m: DemoServerRequest) => {
    const answer = next();
    worker.postMessage(m);
    return answer;
  };
  let first: DemoServerReply;
  try {
    first = await next();
  } catch (e) {
    await worker.terminate();
    throw e;
  }
  if (first.type !== 'listening') throw new Error(`demo server: unexpected ${first.type}`);
  return {
    url: first.url,
    async tamperBigPart(folder, name) {
      await ask({ type: 'tamper', folder, name });
    },
    async close() {
      if (exited) return;
      try {
        await ask({ type: 'close' });
      } finally {
        await worker.terminate();
      }
    },
  };
}
