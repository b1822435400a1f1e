// What the built binary loads before it runs a command: the server (Fastify, the stores) only
// for `sluice serve`, so a device's `sluice --version`, `help` or `pull` does not pay for it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bin, cliEnv } from './test-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-startup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A module hook that appends every module the process resolves to `log`, one URL per line.
const log = join(dir, 'resolved.log');
const hook = join(dir, 'hook.mjs');
writeFileSync(
  hook,
  `import { appendFileSync } from 'node:fs';
export async function resolve(spec, ctx, next) {
  const r = await next(spec, ctx);
  appendFileSync(${JSON.stringify(log)}, r.url + '\\n');
  return r;
}
`,
);
const register = join(dir, 'register.mjs');
writeFileSync(
  register,
  `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${hook}`)});\n`,
);

/** The modules `sluice ARGS` resolved, whatever its exit code. */
function resolvedBy(args: string[]): string[] {
  rmSync(log, { force: true });
  try {
    execFileSync(process.execPath, ['--import', register, bin, ...args], {
      env: cliEnv({ SLUICE_CONFIG_DIR: join(dir, 'config') }),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  } catch {}
  return readFileSync(log, 'utf8').split('\n').filter(Boolean);
}

const serverModule = (url: string) => /\/packages\/server\/dist\/index\.js$|\/fastify\//.test(url);

describe('sluice startup', () => {
  it.each(['--version', 'help', 'serve --help', 'pull --help'])(
    '`sluice %s` does not load the server',
    (line) => {
      const urls = resolvedBy(line.split(' '));
      expect(urls.some((u) => u.endsWith('/cli/dist/main.js'))).toBe(true);
      expect(urls.filter(serverModule)).toEqual([]);
    },
  );

  it('`sluice serve` does load it (the check above can see it)', () => {
    // An unknown log level fails after the server's modules are loaded, before any listen.
    const urls = resolvedBy(['serve', '--data', join(dir, 'data'), '--log-level', 'loud']);
    expect(urls.some(serverModule)).toBe(true);
  });
});
