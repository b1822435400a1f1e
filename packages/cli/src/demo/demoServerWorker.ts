// The demo's embedded server, on its own thread: one event loop for the server and one for the
// client, as on a real deployment, instead of both taking turns on one.
import { open } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { createServer, initAdmin } from '@sluice/server';

export interface DemoServerData {
  dataDir: string;
  adminEmail: string;
  adminPassword: string;
}

export type DemoServerRequest =
  | { type: 'tamper'; folder: string; name: string }
  | { type: 'close' };

export type DemoServerReply =
  | { type: 'listening'; url: string }
  | { type: 'tampered' }
  | { type: 'closed' }
  | { type: 'error'; message: string; code?: string };

const port = parentPort;
if (port === null) throw new Error('demoServerWorker runs only as a worker thread');
const data = workerData as DemoServerData;
const reply = (m: DemoServerReply) => port.postMessage(m);
const fail = (e: unknown) => {
  const { message, code } = e as { message?: unknown; code?: unknown };
  reply({
    type: 'error',
    message: typeof message === 'string' ? message : String(e),
    code: typeof code === 'string' ? code : undefined,
  });
};

try {
  await initAdmin(data.dataDir, data.adminEmail, data.adminPassword);
  const server = await createServer({ dataDir: data.dataDir });
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  port.on('message', (m: DemoServerRequest) => {
    if (m.type === 'close') {
      server.close().then(() => {
        reply({ type: 'closed' });
        port.close();
      }, fail);
      return;
    }
    server.store.resources
      .get(m.folder, m.name)
      .then((record) => {
        const blobId = record?.versions.at(-1)?.bigBlobId;
        if (blobId === undefined || blobId === null) {
          throw new Error(`the server holds no big part of ${m.folder}/${m.name}`);
        }
        return flipByte(server.blobs.path(blobId));
      })
      .then(() => reply({ type: 'tampered' }), fail);
  });
  reply({ type: 'listening', url });
} catch (e) {
  fail(e);
}

/** Flips one byte in the first chunk, so the refusal comes before the rest is fetched. */
async function flipByte(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const { size } = await fh.stat();
    const at = Math.min(size - 1, 4096);
    const byte = Buffer.alloc(1);
    await fh.read(byte, 0, 1, at);
    byte[0] = (byte[0] as number) ^ 0x01;
    await fh.write(byte, 0, 1, at);
  } finally {
    await fh.close();
  }
}
