// Shared vitest settings: when SLUICE_REPORT_DIR is set (scripts/test.mjs), every package also
// writes a JSON report there so the runner can sum passes and failures across all runs.
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

// Suites whose tests mostly wait on child processes (the built CLI, servers) run a file per core
// instead of vitest's default of one fewer: on a 2-core machine that default is one file at a
// time, and these suites are the tail of every test stage.
const WAITING_SUITES = new Set(['cli', 'e2e']);

export function sharedTestConfig(name) {
  const dir = process.env.SLUICE_REPORT_DIR;
  const backend = process.env.SLUICE_BACKEND || 'auto';
  // The server-pg stage runs the server suites again: a report of its own, not the node stage's.
  const store = process.env.SLUICE_TEST_STORE ? `-${process.env.SLUICE_TEST_STORE}` : '';
  // The node24 stage runs the suites again on another node: its reports must not replace these.
  const node = `-node${process.versions.node.split('.')[0]}`;
  return {
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    ...(WAITING_SUITES.has(name) ? { maxWorkers: Math.max(2, availableParallelism()) } : {}),
    reporters: dir
      ? ['default', ['json', { outputFile: join(dir, `${name}-${backend}${store}${node}.json`) }]]
      : ['default'],
  };
}
