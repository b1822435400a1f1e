import { execFileSync } from 'node:child_process';
import { copyFile, cp, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isSluiceError } from '@sluice/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { IV, KEY, MiB, pattern, tempDir } from '../test-helpers.js';
import { backend, resolveBackend } from './backend.js';
import { cryptoBackend } from './cryptoBackend.js';
import type { NativeLoad } from './loadNative.js';
import { loadNative } from './loadNative.js';

// Tests that need the built addon skip on a machine without it, except in CI, where the addon is
// built first and its absence must fail them.
const noAddon = !loadNative().binding && process.env.CI !== 'true';

const failing = (): NativeLoad => ({
  binding: null,
  path: null,
  errors: [
    { candidate: '/nonexistent/sluice_native.node', message: 'Cannot find module' },
    { candidate: '/x/build/Release/sluice_native.node', message: 'invalid ELF header' },
  ],
});
const fakeBinding = { opensslVersion: 'OpenSSL 9.9' } as unknown as NonNullable<
  NativeLoad['binding']
>;
const working = (): NativeLoad => ({
  binding: fakeBinding,
  path: '/x/sluice_native.node',
  errors: [],
});

describe('resolveBackend (loader injected)', () => {
  it('SLUICE_BACKEND=node forces node without loading the addon', () => {
    const r = resolveBackend('node', () => {
      throw new Error('must not load');
    });
    expect(r.kind).toBe('node');
    expect(r.reason).toMatch(/SLUICE_BACKEND=node/);
  });

  it('auto: native when it loads, node with every failure listed otherwise', () => {
    for (const mode of [undefined, '', 'auto']) {
      const ok = resolveBackend(mode, working);
      expect(ok.kind).toBe('native');
      expect(ok.reason).toContain('/x/sluice_native.node');
      const fallback = resolveBackend(mode, failing);
      expect(fallback.kind).toBe('node');
      expect(fallback.reason).toContain('/nonexistent/sluice_native.node: Cannot find module');
      expect(fallback.reason).toContain('invalid ELF header');
    }
  });

  it('SLUICE_BACKEND=native: one ERR_NATIVE_UNAVAILABLE listing every cause and the fix', () => {
    expect(resolveBackend('native', working).kind).toBe('native');
    let caught: unknown;
    try {
      resolveBackend('native', failing);
    } catch (e) {
      caught = e;
    }
    expect(isSluiceError(caught, 'ERR_NATIVE_UNAVAILABLE')).toBe(true);
    const message = (caught as Error).message;
    expect(message).toContain('/nonexistent/sluice_native.node: Cannot find module');
    expect(message).toContain('/x/build/Release/sluice_native.node: invalid ELF header');
    expect(message).toContain('pnpm --filter @sluice/native build');
    expect(message).toMatch(/python3, make, g\+\+/);
    expect(message).toContain(join(dirname(dirname(process.execPath)), 'include', 'node'));
  });

  it('any other SLUICE_BACKEND value is a clear error', () => {
    expect(() => resolveBackend('openssl', working)).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_ARG',
        message: expect.stringContaining('"openssl"'),
      }),
    );
  });
});

describe('backend() in this process', () => {
  it('honours SLUICE_BACKEND (so a CI run with native cannot silently test node)', () => {
    const mode = process.env.SLUICE_BACKEND;
    const info = backend();
    if (mode === 'native') expect(info.kind).toBe('native');
    else if (mode === 'node') expect(info.kind).toBe('node');
    else expect(info.kind).toBe(loadNative().binding ? 'native' : 'node');
    expect(info.reason.length).toBeGreaterThan(0);
    expect(cryptoBackend().kind).toBe(info.kind);
  });

  it('cryptoBackend(kind) gives a specific backend; native throws ERR_NATIVE_UNAVAILABLE if absent', () => {
    expect(cryptoBackend('node').kind).toBe('node');
    if (loadNative().binding) expect(cryptoBackend('native').kind).toBe('native');
    else
      expect(() => cryptoBackend('native')).toThrow(
        expect.objectContaining({ code: 'ERR_NATIVE_UNAVAILABLE' }),
      );
    expect(() => cryptoBackend('gpu' as never)).toThrow(TypeError);
  });

  it.skipIf(noAddon)('both backends produce identical bytes in one process', async () => {
    const dir = await tempDir();
    const src = join(dir, 'both');
    await writeFile(src, pattern(3 * MiB + 9));
    const outs: Buffer[] = [];
    for (const kind of ['native', 'node'] as const) {
      const b = cryptoBackend(kind);
      await b.encryptFile(src, join(dir, `${kind}.enc`), KEY, IV);
      outs.push(await readFile(join(dir, `${kind}.enc`)));
      const chunk = await b.decryptChunk(
        outs[0]?.subarray(16, 4096) ?? Buffer.alloc(0),
        outs[0]?.subarray(0, 16) ?? IV,
        KEY,
      );
      outs.push(chunk);
      outs.push(...(await b.sha256FileChunks(src, MiB)));
    }
    const half = outs.length / 2;
    for (let i = 0; i < half; i++) expect(outs[i]?.equals(outs[i + half] as Buffer)).toBe(true);
  });
});

describe('the compiled dist/ in a child process', () => {
  const here = dirname(fileURLToPath(import.meta.url));
  const pkg = resolve(here, '..', '..');
  const nativeDir = resolve(pkg, '..', '..', 'native');
  let root: string;

  beforeAll(async () => {
    root = await tempDir();
    // Two installs of the built package: one beside a copy of @sluice/native's real loader with no
    // build directories, one beside the real @sluice/native.
    const tsc = resolve(pkg, 'node_modules', '.bin', 'tsc');
    execFileSync(
      tsc,
      [
        '-p',
        join(pkg, 'tsconfig.build.json'),
        '--outDir',
        join(root, 'bare', 'core', 'dist'),
        '--declaration',
        'false',
        '--declarationMap',
        'false',
        '--sourceMap',
        'false',
      ],
      { stdio: 'pipe' },
    );
    const fake = join(root, 'bare', 'node_modules', '@sluice', 'native');
    await mkdir(fake, { recursive: true });
    await copyFile(join(nativeDir, 'index.js'), join(fake, 'index.js'));
    await copyFile(join(nativeDir, 'package.json'), join(fake, 'package.json'));
    await cp(join(root, 'bare', 'core'), join(root, 'real', 'core'), { recursive: true });
    await mkdir(join(root, 'real', 'node_modules', '@sluice'), { recursive: true });
    await symlink(nativeDir, join(root, 'real', 'node_modules', '@sluice', 'native'));
    // Both installs beside the real @sluice/protocol and jose, which core's dist imports.
    const protocolDir = resolve(pkg, '..', 'protocol');
    for (const install of ['bare', 'real']) {
      await symlink(protocolDir, join(root, install, 'node_modules', '@sluice', 'protocol'));
      await symlink(
        resolve(pkg, 'node_modules', 'jose'),
        join(root, install, 'node_modules', 'jose'),
      );
    }
  }, 120_000);

  function child(install: 'bare' | 'real', env: Record<string, string>, script: string): unknown {
    const entry = join(root, install, 'core', 'dist', 'index.js');
    const code = `import(${JSON.stringify(entry)}).then(async (m) => { let r; try { r = await (${script})(m); } catch (e) { r = { name: e.name, code: e.code, message: e.message }; } process.stdout.write(JSON.stringify(r)); });`;
    const base = { ...process.env };
    delete base.SLUICE_BACKEND;
    delete base.SLUICE_NATIVE_PATH;
    const out = execFileSync(process.execPath, ['-e', code], {
      env: { ...base, ...env },
      encoding: 'utf8',
    });
    return JSON.parse(out);
  }

  it('SLUICE_BACKEND=native with no loadable addon: one error listing all three candidates', () => {
    const r = child(
      'bare',
      { SLUICE_BACKEND: 'native', SLUICE_NATIVE_PATH: '/nonexistent/sluice.node' },
      '(m) => m.backend()',
    ) as {
      code: string;
      message: string;
    };
    expect(r.code).toBe('ERR_NATIVE_UNAVAILABLE');
    expect(r.message).toContain('/nonexistent/sluice.node');
    expect(r.message).toMatch(/build\/[a-z0-9]+-[a-z0-9]+-abi-\d+\/sluice_native\.node: /);
    expect(r.message).toMatch(/build\/Debug\/sluice_native\.node: /);
    expect(r.message).toContain('pnpm --filter @sluice/native build');
    // Every facade call fails the same way.
    const call = child(
      'bare',
      { SLUICE_BACKEND: 'native' },
      '(m) => m.sha256(Buffer.from("x"))',
    ) as { code: string };
    expect(call.code).toBe('ERR_NATIVE_UNAVAILABLE');
  });

  it('without SLUICE_BACKEND the same install falls back to node and says why', () => {
    const r = child('bare', {}, '(m) => m.backend()') as { kind: string; reason: string };
    expect(r.kind).toBe('node');
    expect(r.reason).toMatch(/build\/[a-z0-9]+-[a-z0-9]+-abi-\d+\/sluice_native\.node: /);
  });

  it.skipIf(noAddon)('with the real addon, SLUICE_BACKEND=native loads it', () => {
    const r = child('real', { SLUICE_BACKEND: 'native' }, '(m) => m.backend()') as { kind: string };
    expect(r.kind).toBe('native');
  });

  it('the node backend’s worker threads run from dist (parallel decryptFile)', async () => {
    const src = join(root, 'w.plain');
    await writeFile(src, pattern(33 * MiB + 5, 4));
    const script = `async (m) => { const k = Buffer.from(${JSON.stringify(KEY.toString('hex'))}, 'hex'); const iv = Buffer.from(${JSON.stringify(IV.toString('hex'))}, 'hex');
      await m.encryptFile(${JSON.stringify(src)}, ${JSON.stringify(`${src}.enc`)}, k, iv);
      await m.decryptFile(${JSON.stringify(`${src}.enc`)}, ${JSON.stringify(`${src}.dec`)}, k, iv, { threads: 3 });
      return { kind: m.backend().kind, sha: (await m.sha256File(${JSON.stringify(`${src}.dec`)})).toString('hex') }; }`;
    const r = child('bare', { SLUICE_BACKEND: 'node' }, script) as { kind: string; sha: string };
    expect(r.kind).toBe('node');
    const { createHash } = await import('node:crypto');
    expect(r.sha).toBe(
      createHash('sha256')
        .update(await readFile(src))
        .digest('hex'),
    );
  });
});
