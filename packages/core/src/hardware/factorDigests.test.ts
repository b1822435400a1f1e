// Factor digests and the drifted-device vectors of docs/FORMAT.md §7.1, and the
// SLUICE_HARDWARE_FACTORS override through the built package in a child process.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { deriveEnvelopeKey } from '@sluice/protocol';
import { describe, expect, it } from 'vitest';
import { factorDigest, factorDigests, factorsOverride } from './factorDigests.js';
import type { HardwareFactor } from './factors.js';
import { canonicalHardware, hashCanonicalHardware } from './hardwareInfo.js';

const here = dirname(fileURLToPath(import.meta.url));
const doc = await readFile(resolve(here, '..', '..', '..', '..', 'docs', 'FORMAT.md'), 'utf8');

function fenced(info: string): string {
  const m = doc.match(new RegExp(`\`\`\`${info}\\n([\\s\\S]*?)\`\`\``));
  if (m?.[1] === undefined) throw new Error(`FORMAT.md has no \`\`\`${info} block`);
  return m[1];
}

const factors = JSON.parse(fenced('json hardware-factors')) as Record<HardwareFactor, string>;
const drifted = JSON.parse(fenced('json hardware-drifted')) as {
  'disk.serial': string;
  hash: string;
  digest: string;
};

describe('factor digests (docs/FORMAT.md §7.1)', () => {
  it('digest each present factor of the vector as documented, placeholders left out', () => {
    expect(factorDigests(factors)).toEqual(JSON.parse(fenced('json hardware-factor-digests')));
    expect(Object.keys(factorDigests(factors))).not.toContain('system.serial');
    expect(factorDigest('disk.serial', '  S6B0NL0W123456 ')).toBe(
      factorDigests(factors)['disk.serial'],
    );
    expect(factorDigest('disk.serial', 'None')).toBeUndefined();
    expect(() => factorDigests({ hostname: 'x' } as never)).toThrow(RangeError);
  });

  it('a drifted device: one new digest, a new hash, and the envelope key of the new hash', async () => {
    const now = { ...factors, 'disk.serial': drifted['disk.serial'] };
    const before = factorDigests(factors);
    const after = factorDigests(now);
    const differing = Object.keys(before).filter((n) => before[n] !== after[n]);
    expect(differing).toEqual(['disk.serial']);
    expect(after['disk.serial']).toBe(drifted.digest);
    expect(hashCanonicalHardware(canonicalHardware(now))).toBe(drifted.hash);
    const keys = JSON.parse(fenced('json hardware-envelope-keys')) as Record<string, string>;
    const bound = fenced('text hardware-hash').trim();
    const pw = 'correct horse battery staple';
    const email = 'device@example.com';
    expect((await deriveEnvelopeKey(email, pw, bound)).toString('hex')).toBe(keys.bound);
    expect((await deriveEnvelopeKey(email, pw, drifted.hash)).toString('hex')).toBe(keys.drifted);
  });

  it('SLUICE_HARDWARE_FACTORS: normalised factors, or a RangeError that names the variable', () => {
    expect(factorsOverride(undefined)).toBeUndefined();
    expect(factorsOverride('')).toBeUndefined();
    expect(
      factorsOverride('{"disk.serial":" AB 1 ","cpu.cores":8,"system.serial":"None"}'),
    ).toEqual({ 'disk.serial': 'ab 1', 'cpu.cores': '8' });
    for (const bad of ['{', '[]', '"x"', '{"hostname":"a"}', '{"cpu.cores":true}']) {
      expect(() => factorsOverride(bad)).toThrow(/^SLUICE_HARDWARE_FACTORS must be a JSON object/);
    }
  });
});

describe('hardwareInfo with the overrides (built package, a child process each)', () => {
  const run = promisify(execFile);
  const entry = resolve(here, '..', '..', 'dist', 'index.js');
  const code = `import(${JSON.stringify(entry)}).then(async (m) => process.stdout.write(JSON.stringify(await m.hardwareInfo())))`;
  const info = async (env: Record<string, string>) =>
    JSON.parse(
      (await run(process.execPath, ['-e', code], { env: { ...process.env, ...env } })).stdout,
    );

  it('the factors override gives the hash and digests of those factors, source env', async () => {
    const now = { ...factors, 'disk.serial': drifted['disk.serial'] };
    const got = await info({
      SLUICE_HARDWARE_FACTORS: JSON.stringify(now),
      SLUICE_HARDWARE_HASH: '',
    });
    expect(got).toMatchObject({ hash: drifted.hash, source: 'env', digests: factorDigests(now) });
  });

  it('a chosen hash sends no digests, unless factors are given too', async () => {
    const chosen = 'cd'.repeat(32);
    const alone = await info({ SLUICE_HARDWARE_HASH: chosen, SLUICE_HARDWARE_FACTORS: '' });
    expect(alone.hash).toBe(chosen);
    expect(alone.digests).toBeUndefined();
    const both = await info({
      SLUICE_HARDWARE_HASH: chosen,
      SLUICE_HARDWARE_FACTORS: '{"cpu.cores":4}',
    });
    expect(both).toMatchObject({ hash: chosen, digests: factorDigests({ 'cpu.cores': '4' }) });
    const real = await info({ SLUICE_HARDWARE_HASH: '', SLUICE_HARDWARE_FACTORS: '' });
    expect(real.source).toBe('systeminformation');
    expect(real.digests).toEqual(factorDigests(real.factors));
  });

  it('a malformed factors override fails the read, naming the variable', async () => {
    await expect(info({ SLUICE_HARDWARE_FACTORS: '{"hostname":"vm"}' })).rejects.toThrow(
      /SLUICE_HARDWARE_FACTORS must be a JSON object/,
    );
  });
});
