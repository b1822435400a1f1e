import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveServeSettings } from './resolveServeSettings.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-keep-settings-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'config.json');
writeFileSync(file, JSON.stringify({ keepVersions: 7 }), { mode: 0o600 });

describe('retention setting (keepVersions)', () => {
  it('--keep over SLUICE_KEEP_VERSIONS over the config file; unset when none gives it', () => {
    expect(resolveServeSettings({ env: {}, flags: {} }).keepVersions).toBeUndefined();
    const fromFile = resolveServeSettings({ file, env: {}, flags: {} });
    expect(fromFile.keepVersions).toBe(7);
    expect(fromFile.origins.get('keepVersions')).toBe(`--config ${file}`);
    const env = { SLUICE_KEEP_VERSIONS: '3' };
    const fromEnv = resolveServeSettings({ file, env, flags: {} });
    expect(fromEnv.keepVersions).toBe(3);
    expect(fromEnv.origins.get('keepVersions')).toBe('SLUICE_KEEP_VERSIONS');
    const fromFlag = resolveServeSettings({ file, env, flags: { keep: '0' } });
    expect(fromFlag.keepVersions).toBe(0);
    expect(fromFlag.origins.get('keepVersions')).toBe('--keep');
  });

  it('a typed value that is not a whole number is refused naming where it came from', () => {
    for (const bad of ['-1', '2.5', 'all', '']) {
      expect(() => resolveServeSettings({ env: {}, flags: { keep: bad } })).toThrow(
        /--keep must be a whole number of versions/,
      );
    }
    expect(() => resolveServeSettings({ env: { SLUICE_KEEP_VERSIONS: 'x' }, flags: {} })).toThrow(
      /SLUICE_KEEP_VERSIONS must be a whole number/,
    );
  });
});
