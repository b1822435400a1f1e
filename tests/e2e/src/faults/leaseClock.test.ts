// The offline lease against the device's clock, through the built CLI on a shifted clock (the
// skewClock.mjs preload) with the server stopped: a clock turned back behind the newest server
// time the device has seen is ERR_CLOCK_ROLLBACK, one past the lease's end ERR_LEASE_EXPIRED, and
// a clock a minute slow (within the tolerance) still opens the model.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEVICE_USER, MiB, PASSWORD } from '../apiServer.js';
import { sluice, sluiceOk } from './cliChild.js';
import { expectVerified, HW, pushedWorld } from './faultWorld.js';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

describe('offline lease and the device clock (built CLI, server stopped)', () => {
  it('a clock turned back is ERR_CLOCK_ROLLBACK, one past notAfter ERR_LEASE_EXPIRED; a slightly slow one opens', async () => {
    const w = await pushedWorld(MiB);
    const env = {
      SLUICE_CONFIG_DIR: join(w.work, 'config'),
      SLUICE_PASSWORD: PASSWORD,
      SLUICE_HARDWARE_HASH: HW,
    };
    const cache = join(w.work, 'cache');
    await sluiceOk(['login', '--server', w.api.url, '--email', DEVICE_USER], env);
    await sluiceOk(['pull', 'models', 'm.bin', '-o', join(w.work, 'a.bin'), '--cache', cache], env);
    await w.api.close();
    const offline = (out: string, skewMs: number) =>
      sluice(
        ['pull', 'models', 'm.bin', '-o', join(w.work, out), '--cache', cache, '--offline'],
        env,
        {
          skewMs,
        },
      ).done;

    const back = await offline('back.bin', -2 * 60 * MINUTE);
    expect(back.code).toBe(1);
    expect(back.stderr).toContain('ERR_CLOCK_ROLLBACK');
    expect(back.stderr).toMatch(/clock .* is behind the newest time the server has shown it/);
    const late = await offline('late.bin', 7 * DAY + MINUTE);
    expect(late.code).toBe(1);
    expect(late.stderr).toContain('ERR_LEASE_EXPIRED');
    expect(existsSync(join(w.work, 'back.bin')) || existsSync(join(w.work, 'late.bin'))).toBe(
      false,
    );

    const slow = await offline('slow.bin', -MINUTE);
    expect(slow.code, slow.stderr).toBe(0);
    await expectVerified(join(w.work, 'slow.bin'), w.plain);
  });
});
