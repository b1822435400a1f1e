// The canonical form and hash are checked against the vector in docs/FORMAT.md §7, and the
// reader against this machine: what it returns must hash to what it says.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  canonicalHardware,
  HARDWARE_FACTORS,
  type HardwareFactor,
  hardwareHash,
  hardwareInfo,
  hashCanonicalHardware,
  normaliseFactor,
} from './hardwareInfo.js';

const here = dirname(fileURLToPath(import.meta.url));
const doc = await readFile(resolve(here, '..', '..', '..', '..', 'docs', 'FORMAT.md'), 'utf8');

function fenced(info: string): string {
  const m = doc.match(new RegExp(`\`\`\`${info}\\n([\\s\\S]*?)\`\`\``));
  if (m?.[1] === undefined) throw new Error(`FORMAT.md has no \`\`\`${info} block`);
  return m[1];
}

describe('hardware hash format (docs/FORMAT.md §7)', () => {
  const factors = JSON.parse(fenced('json hardware-factors')) as Record<HardwareFactor, string>;

  it('normalises the documented factors into the documented canonical form and hash', () => {
    const canonical = canonicalHardware(factors);
    expect(canonical).toBe(fenced('text hardware-canonical'));
    expect(hashCanonicalHardware(canonical)).toBe(fenced('text hardware-hash').trim());
  });

  it('ignores case and spacing but not content', () => {
    const shouted = Object.fromEntries(
      Object.entries(factors).map(([k, v]) => [k, `  ${v.toUpperCase()}\t`]),
    );
    expect(canonicalHardware(shouted)).toBe(canonicalHardware(factors));
    expect(canonicalHardware({ ...factors, 'disk.serial': 'S6B0NL0W123457' })).not.toBe(
      canonicalHardware(factors),
    );
  });

  it('leaves placeholders and control characters out instead of hashing them', () => {
    for (const v of ['', ' - ', 'Default string', 'NOT SPECIFIED', '0', 'unknown']) {
      expect(normaliseFactor(v)).toBeUndefined();
    }
    expect(normaliseFactor('00000000-0000-0000-0000-000000000000')).toBeUndefined();
    expect(normaliseFactor('ab\u0000cd')).toBeUndefined();
    expect(normaliseFactor(undefined)).toBeUndefined();
    expect(normaliseFactor(8)).toBe('8');
    expect(canonicalHardware({ 'system.serial': 'None' })).toBe('sluice-hw-v1\n');
  });

  it('refuses factor names it does not know', () => {
    expect(() => canonicalHardware({ hostname: 'vm' } as never)).toThrow(RangeError);
  });
});

describe('hardwareInfo on this machine', () => {
  it('reads stable factors only, and its hash is the hash of its canonical form', async () => {
    const info = await hardwareInfo();
    expect(Object.keys(info.factors).every((k) => HARDWARE_FACTORS.includes(k as never))).toBe(
      true,
    );
    expect(info.canonical).toBe(canonicalHardware(info.factors));
    if (info.source === 'systeminformation') {
      expect(info.hash).toBe(hashCanonicalHardware(info.canonical));
    }
    expect(info.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(await hardwareHash()).toBe(info.hash);
  });

  it('is the same in another process (nothing volatile), and the env override replaces it', async () => {
    const run = promisify(execFile);
    const entry = resolve(here, '..', '..', 'dist', 'index.js');
    const code = `import(${JSON.stringify(entry)}).then(async (m) => process.stdout.write(await m.hardwareHash()))`;
    const env = { ...process.env, SLUICE_HARDWARE_HASH: '' };
    const [a, b] = await Promise.all([
      run(process.execPath, ['-e', code], { env }),
      run(process.execPath, ['-e', code], { env }),
    ]);
    expect(a.stdout).toMatch(/^[0-9a-f]{64}$/);
    expect(b.stdout).toBe(a.stdout);
    const chosen = 'ab'.repeat(32);
    const c = await run(process.execPath, ['-e', code], {
      env: { ...process.env, SLUICE_HARDWARE_HASH: chosen },
    });
    expect(c.stdout).toBe(chosen);
    const bad = run(process.execPath, ['-e', code], {
      env: { ...process.env, SLUICE_HARDWARE_HASH: 'not-a-hash' },
    });
    await expect(bad).rejects.toThrow(/SLUICE_HARDWARE_HASH must be 64 lower-case hex/);
  });
});
