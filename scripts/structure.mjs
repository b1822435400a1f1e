#!/usr/bin/env node
// Size limits of the sources (docs/ARCHITECTURE.md): no non-test file in packages/*/src over
// 400 lines, no function over 80 lines. Prints each offender and exits 1 when there is one.
// Test files (*.test.ts) and test helpers (test-*.ts, testS3.ts) are not held to it.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { root } from './bootstrap.mjs';

export const MAX_FILE_LINES = 400;
export const MAX_FUNCTION_LINES = 80;

const isTestFile = (name) =>
  name.endsWith('.test.ts') || name.startsWith('test-') || /^test[A-Z]/.test(name);

function sources(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sources(path, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts') && !isTestFile(name)) out.push(path);
  }
  return out;
}

function functionName(node) {
  if (node.name) return node.name.getText();
  const parent = node.parent;
  if (parent && (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent))) {
    return parent.name.getText();
  }
  return '<anonymous>';
}

export function offenders() {
  const found = [];
  const packages = join(root, 'packages');
  for (const pkg of readdirSync(packages)) {
    const src = join(packages, pkg, 'src');
    try {
      statSync(src);
    } catch {
      continue;
    }
    for (const file of sources(src)) {
      const text = readFileSync(file, 'utf8');
      const where = relative(root, file);
      const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
      if (lines > MAX_FILE_LINES) found.push(`${where}: ${lines} lines (limit ${MAX_FILE_LINES})`);
      const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
      const visit = (node) => {
        if (ts.isFunctionLike(node) && node.body) {
          const first = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
          const last = sf.getLineAndCharacterOfPosition(node.end).line;
          const length = last - first + 1;
          if (length > MAX_FUNCTION_LINES) {
            found.push(
              `${where}:${first + 1}: function ${functionName(node)} is ${length} lines (limit ${MAX_FUNCTION_LINES})`,
            );
          }
        }
        ts.forEachChild(node, visit);
      };
      visit(sf);
    }
  }
  return found;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const found = offenders();
  for (const line of found) console.log(line);
  console.log(found.length === 0 ? 'structure: ok' : `structure: ${found.length} over the limits`);
  process.exit(found.length === 0 ? 0 : 1);
}
