// One file→file decrypt in a fresh process, then its peak RSS:
// `node rssChild.js KIND SRC DST KEYHEX IVHEX`. Reads VmHWM from /proc: unlike getrusage's
// maxrss, it is not inherited from the parent across fork and exec.
import { readFileSync } from 'node:fs';
import { cryptoBackend } from '@sluice/core';

const [kind, src, dst, keyHex, ivHex] = process.argv.slice(2);
if (kind !== 'native' && kind !== 'node') throw new Error(`bad backend kind: ${kind}`);
await cryptoBackend(kind).decryptFile(
  src as string,
  dst as string,
  Buffer.from(keyHex as string, 'hex'),
  Buffer.from(ivHex as string, 'hex'),
  { threads: 2 },
);
const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
if (!hwm) throw new Error('VmHWM not found in /proc/self/status');
process.stdout.write(`${JSON.stringify({ peakRssMb: Number(hwm[1]) / 1024 })}\n`);
