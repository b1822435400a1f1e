// Shared by the root commands (`npm test`, `npm run demo`): make sure pnpm exists, then install
// and build, so that each works as the first command on a fresh clone.
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = dirname(dirname(fileURLToPath(import.meta.url)));

export function run(cmd, args, env = {}, opts = {}) {
  const r = spawnSync(cmd, args, {
    cwd: root,
    stdio: opts.quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit',
    env: { ...process.env, ...env },
  });
  if (r.error) console.error(`sluice: cannot run ${cmd}: ${r.error.message}`);
  return r.status === 0;
}

export function pnpmCommand() {
  if (spawnSync('pnpm', ['--version'], { stdio: 'ignore' }).status === 0) return 'pnpm';
  console.error('sluice: pnpm not found, installing it with `npm i -g pnpm@12.21.0`');
  if (run('npm', ['i', '-g', 'pnpm@12.21.0'])) return 'pnpm';
  throw new Error('pnpm is required: install it with `npm i -g pnpm` and run again');
}

/** pnpm install (frozen lockfile) and turbo build; false if either failed. */
export function installAndBuild(pnpm, { quiet = false } = {}) {
  return (
    run(pnpm, ['install', '--frozen-lockfile'], {}, { quiet }) &&
    run(pnpm, ['run', 'build', ...(quiet ? ['--output-logs=errors-only'] : [])], {}, { quiet })
  );
}
