// radosgw stopped and restarted under the API and its devices, on a private Ceph cluster (the
// shared one the other suites use is never touched).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CephCluster, startCeph } from '../../../../scripts/ceph/ceph.mjs';
import { entries, expectServes, expectVerified, gate, pullModel, rejection } from './faultWorld.js';
import { cdnGets, type S3Env, s3World, sharedS3 } from './s3World.js';

// Runs where the S3 suites run (Ceph is installed there).
const enabled = sharedS3() !== undefined;
let cluster: CephCluster | undefined;
let dir: string | undefined;

afterAll(async () => {
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function envOf(c: CephCluster): S3Env {
  return {
    endpoint: c.endpoint,
    region: c.region,
    rw: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
    read: { accessKeyId: c.readAccessKeyId, secretAccessKey: c.readSecretAccessKey },
  };
}

describe.skipIf(!enabled)('radosgw stopped and restarted (private cluster)', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-faults-ceph-'));
    cluster = await startCeph({ dir });
  });

  it('radosgw restarted in the middle of a pull: the pull waits it out and completes', async () => {
    const c = cluster as CephCluster;
    const w = await s3World(envOf(c));
    const stopped = gate();
    const back = gate();
    let state: 'up' | 'down' | 'back' = 'up';
    let ranged = 0;
    w.cdnProxy.rule = (r) => {
      if (r.range === undefined) return undefined;
      if (state === 'up')
        return ++ranged === 3 ? { kind: 'hold', until: stopped.opened } : undefined;
      // While radosgw is down the client meets it twice, then waits for it to be back.
      const refused = w.cdnProxy.log.filter((e) => e.action === 'refused').length;
      return state === 'down' && refused >= 2 ? { kind: 'hold', until: back.opened } : undefined;
    };
    const out = join(w.work, 'out.bin');
    const pulling = pullModel(w.device, out, { concurrency: 1 });
    await w.cdnProxy.waitFor('the third range held', (log) => log.some((e) => e.action === 'hold'));
    await c.stopRgw();
    state = 'down';
    stopped.open();
    await w.cdnProxy.waitFor(
      'two refused requests',
      (log) => log.filter((e) => e.action === 'refused').length >= 2,
    );
    await c.startRgw();
    state = 'back';
    back.open();
    await pulling;
    await expectVerified(out, w.plain);
    expect(cdnGets(w).filter((e) => e.action === 'refused').length).toBeGreaterThanOrEqual(2);
    await expectServes(w.api, w.plain);
  });

  it('radosgw down for a whole pull: a typed error and no file; after its restart the pull works', async () => {
    const c = cluster as CephCluster;
    const w = await s3World(envOf(c));
    await c.stopRgw();
    try {
      const err = await rejection(pullModel(w.device, join(w.work, 'out.bin')));
      // The API keeps small parts on the same radosgw: it answers 5xx, or the CDN is unreachable.
      expect(['ERR_SERVER', 'ERR_NETWORK', 'ERR_CDN']).toContain(err.code);
      expect(await entries(w.work)).toEqual(['src.bin']);
      // The API itself still answers.
      const me = await w.device.request<{ user: { email: string } }>('GET', '/me');
      expect(me.user.email).toBeTruthy();
    } finally {
      await c.startRgw();
    }
    await expectServes(w.api, w.plain);
  });
});
