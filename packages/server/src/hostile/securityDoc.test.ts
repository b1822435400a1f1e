// docs/SECURITY.md cannot drift from the suites: every test it names exists, every hostile test
// is listed, and every finding (it.fails) is explained.
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const HOSTILE_DIRS = ['packages/server/src/hostile', 'tests/e2e/src/hostile'];

interface Row {
  id: string;
  cells: string[];
  file: string;
  test: string;
}

/** The rows of the page's tables whose first cell is an id (A01…, H01…). */
async function rows(): Promise<Row[]> {
  const text = await readFile(join(ROOT, 'docs/SECURITY.md'), 'utf8');
  const out: Row[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('| ')) continue;
    const cells = line
      .slice(1, -1)
      .split(/(?<!\\)\|/)
      .map((c) => c.trim().replace(/\\\|/g, '|'));
    const id = cells[0] ?? '';
    if (!/^[AH]\d+$/.test(id)) continue;
    const unquote = (c: string | undefined) => (c ?? '').replace(/^`|`$/g, '');
    out.push({ id, cells, file: unquote(cells.at(-2)), test: unquote(cells.at(-1)) });
  }
  return out;
}

interface Named {
  name: string;
  fails: boolean;
}

/**
 * The `it(...)`, `it.fails(...)` and `it.skipIf(…)(...)` names of a test file (string literals
 * only; a skipIf test runs on one store backend).
 */
async function testsIn(file: string): Promise<Named[]> {
  const text = await readFile(join(ROOT, file), 'utf8');
  const found: Named[] = [];
  const re = /\bit(\.fails)?(?:\.skipIf\([^)]*\))?\(\s*(['"`])((?:\\.|(?!\2)[^\\])*)\2/g;
  for (const m of text.matchAll(re)) {
    found.push({ name: (m[3] ?? '').replace(/\\(.)/g, '$1'), fails: m[1] !== undefined });
  }
  return found;
}

async function hostileFiles(): Promise<string[]> {
  const files: string[] = [];
  for (const dir of HOSTILE_DIRS) {
    for (const f of await readdir(join(ROOT, dir))) {
      if (f.endsWith('.test.ts') && f !== 'securityDoc.test.ts') files.push(`${dir}/${f}`);
    }
  }
  return files.sort();
}

describe('docs/SECURITY.md', () => {
  it('every test it names exists in the file it names', async () => {
    const missing: string[] = [];
    for (const row of await rows()) {
      const names = await testsIn(row.file).catch(() => []);
      if (!names.some((n) => n.name === row.test))
        missing.push(`${row.id}: ${row.file} › ${row.test}`);
    }
    expect(missing).toEqual([]);
  });

  it('lists every test of the hostile suite exactly once', async () => {
    const listed = (await rows()).filter((r) => r.id.startsWith('H'));
    const keys = listed.map((r) => `${r.file} › ${r.test}`);
    expect(new Set(keys).size).toBe(keys.length);
    const unlisted: string[] = [];
    for (const file of await hostileFiles()) {
      for (const t of await testsIn(file)) {
        if (!keys.includes(`${file} › ${t.name}`)) unlisted.push(`${file} › ${t.name}`);
      }
    }
    expect(unlisted).toEqual([]);
  });

  it('numbers the cases H01, H02, … in order, at least 40 of them', async () => {
    const ids = (await rows()).filter((r) => r.id.startsWith('H')).map((r) => r.id);
    expect(ids.length).toBeGreaterThanOrEqual(40);
    expect(ids).toEqual(ids.map((_, i) => `H${String(i + 1).padStart(2, '0')}`));
    const auth = (await rows()).filter((r) => r.id.startsWith('A')).map((r) => r.id);
    expect(auth).toEqual(auth.map((_, i) => `A${String(i + 1).padStart(2, '0')}`));
  });

  it('gives every it.fails test a finding with its own section, and no finding to a passing test', async () => {
    const text = await readFile(join(ROOT, 'docs/SECURITY.md'), 'utf8');
    const sections = new Set([...text.matchAll(/^### (F\d+):/gm)].map((m) => m[1]));
    const wrong: string[] = [];
    for (const row of (await rows()).filter((r) => r.id.startsWith('H'))) {
      const t = (await testsIn(row.file)).find((n) => n.name === row.test);
      const finding = /\*\*(F\d+)\*\*/.exec(row.cells.join(' '))?.[1];
      if (t?.fails !== (finding !== undefined))
        wrong.push(`${row.id}: fails=${t?.fails} finding=${finding}`);
      if (finding !== undefined && !sections.has(finding))
        wrong.push(`${row.id}: no section ${finding}`);
      // The section names the case back.
      if (finding !== undefined) {
        const section = text.split(`### ${finding}:`)[1]?.split('\n### ')[0] ?? '';
        if (!section.split('\n')[0]?.includes(row.id))
          wrong.push(`${row.id}: not in ${finding}'s title`);
      }
    }
    expect(wrong).toEqual([]);
  });
});
