#!/usr/bin/env node
// `npm run demo [-- --size 2GiB]`: install and build if needed, then `sluice demo`.
import { join } from 'node:path';
import { installAndBuild, pnpmCommand, root, run } from './bootstrap.mjs';

if (!installAndBuild(pnpmCommand(), { quiet: true })) {
  console.error('sluice demo: install or build failed (see above)');
  process.exit(1);
}
// pnpm passes the `--` of `pnpm demo -- --size 64MiB` on (npm does not): it is not sluice's.
const args = process.argv.slice(2);
if (args[0] === '--') args.shift();
const ok = run(process.execPath, [join(root, 'packages/cli/bin/sluice.js'), 'demo', ...args]);
process.exit(ok ? 0 : 1);
