// One file→file decrypt in a fresh process, then its peak RSS: `node rssChild.js KIND SRC DST KEYHEX IVHEX`.
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
// resourceUsage().maxRSS is in kilobytes.
process.stdout.write(`${JSON.stringify({ peakRssMb: process.resourceUsage().maxRSS / 1024 })}\n`);
