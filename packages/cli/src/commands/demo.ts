import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backend } from '@sluice/core';
import { defineCommand, EXIT } from '../command.js';
import { commonFlags } from '../commonFlags.js';
import {
  createUsers,
  type Demo,
  generate,
  pullModel,
  pushModel,
  secondDevice,
  startServer,
  tamperedCdn,
} from '../demo/demoSteps.js';
import { StepLog } from '../demo/stepLog.js';
import { formatSize, parseSize } from '../units.js';
import { withInterrupt } from '../withInterrupt.js';

export const demoCommand = defineCommand({
  name: 'demo',
  summary: 'Run the whole system on this machine: server, push, device pull, wrong device refused',
  usage: '[--size 512MiB] [--keep] [--dir DIR] [--json]',
  flags: {
    size: {
      type: 'string',
      value: 'SIZE',
      help: 'pseudo-model size (KiB, MiB, GiB)',
      default: '512MiB',
    },
    keep: {
      type: 'boolean',
      help: 'keep the work directory (server data, model, pulled copy) and print its path',
    },
    dir: {
      type: 'string',
      value: 'DIR',
      help: 'create the work directory under DIR (default the OS temp directory)',
    },
    json: {
      ...commonFlags.json,
      help: 'print one JSON object with every step instead of the step lines',
    },
  },
  notes: [
    'Starts the embedded server in-process on a free loopback port with a fresh data directory,',
    'creates an admin, an uploader and a device user, pushes a generated model as the uploader,',
    "pulls it as the device user bound to this machine's hardware hash, checks the SHA-256, and",
    'shows a second device refused (403 ERR_DEVICE_NOT_BOUND) and a tampered big part refused',
    '(ERR_CHUNK_DIGEST). Exit 0 only if every step held.',
  ],
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const size = parseSize(values.size);
    const dir = await mkdtemp(join(values.dir ?? tmpdir(), 'sluice-demo-'));
    const log = new StepLog(io, values.json);
    const t0 = performance.now();
    let demo: Demo | undefined;
    try {
      const b = backend();
      if (!values.json) {
        io.out(`sluice demo: ${formatSize(size)} pseudo-model, ${b.kind} crypto (${b.reason})`);
      }
      const url = await withInterrupt(async (signal) => {
        demo = { dir, size, signal, log };
        const sourceDigest = await generate(demo);
        const { url, admin } = await startServer(demo);
        const { uploader, device } = await createUsers(demo, url, admin);
        await pushModel(demo, url, uploader);
        const bound = await pullModel(demo, url, device, sourceDigest);
        await secondDevice(demo, bound);
        await tamperedCdn(demo, bound);
        return url;
      });
      const totalMs = Math.round(performance.now() - t0);
      if (values.json) {
        const steps = log.steps;
        io.out(JSON.stringify({ ok: true, sizeBytes: size, backend: b, url, steps, totalMs, dir }));
      } else {
        if (values.keep) io.out(`kept ${dir}`);
        io.out(`demo: ok (${(totalMs / 1000).toFixed(1)} s)`);
      }
      return EXIT.ok;
    } finally {
      await demo?.server?.close();
      if (!values.keep) await rm(dir, { recursive: true, force: true });
    }
  },
});
