// `sluice serve` behind a load balancer: health, readiness, metrics and the drain on SIGTERM, as
// the built binary runs them.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fastHashConfig, finished, listeningUrl, start } from './test-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-ops-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sluice serve for a load balancer', () => {
  it('serves /healthz, /readyz and /metrics (token from the environment); SIGTERM drains first', async () => {
    const token = randomBytes(24).toString('base64url');
    const args = ['serve', '--config', fastHashConfig(dir), '--data', join(dir, 'data')];
    const serve = start([...args, '--port', '0', '--drain-delay', '1'], {
      env: { SLUICE_METRICS_TOKEN: token },
    });
    const done = finished(serve);
    try {
      const url = await listeningUrl(serve);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      expect((await fetch(`${url}/metrics`)).status).toBe(401);
      const metrics = await fetch(`${url}/metrics`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(metrics.status).toBe(200);
      const text = await metrics.text();
      expect(text).toContain('sluice_http_requests_total{');
      // One server in the process: serve adds the process metrics.
      expect(text).toContain('process_cpu_user_seconds_total');

      const t0 = performance.now();
      serve.kill('SIGTERM');
      let ready = 200;
      while (ready === 200 && performance.now() - t0 < 900) {
        ready = (await fetch(`${url}/readyz`)).status;
      }
      expect(ready).toBe(503);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      const r = await done;
      expect(performance.now() - t0).toBeGreaterThanOrEqual(950);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('SIGTERM: closing (/readyz 503, serving 1 s more');
      expect(r.stdout).toContain('shutdown.draining');
      expect(r.stdout + r.stderr).not.toContain(token);
    } finally {
      if (serve.exitCode === null && serve.signalCode === null) serve.kill('SIGKILL');
      await done;
    }
  });
});
