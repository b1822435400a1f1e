// The CLI as a user runs it: the built binary (bin/sluice.js over dist/), in a child process.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  randomBytes,
} from 'node:crypto';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../bin/sluice.js', import.meta.url));
let dir: string;

function sluice(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

beforeAll(() => {
  expect(existsSync(join(bin, '../../dist/main.js')), 'run `pnpm build` before the CLI tests').toBe(
    true,
  );
  dir = mkdtempSync(join(tmpdir(), 'sluice-cli-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sluice CLI', () => {
  it('prints help for the tool and for every command', () => {
    const top = sluice('--help');
    expect(top.code).toBe(0);
    for (const name of [
      'login',
      'logout',
      'passwd',
      'push',
      'pull',
      'ls',
      'rm',
      'user',
      'serve',
      'doctor',
      'demo',
      'keys',
      'encrypt',
      'decrypt',
      'split',
      'concat',
    ]) {
      expect(top.stdout).toContain(name);
      const r = sluice(name, '--help');
      expect(r.code, name).toBe(0);
      expect(r.stdout).toContain(`usage: sluice ${name}`);
    }
  });

  it('a reader that closes the pipe early ends it quietly (exit 141, no EPIPE trace)', () => {
    // 4 MiB of plaintext to stdout, of which `head` reads one byte: later writes hit a closed pipe.
    const dir = mkdtempSync(join(tmpdir(), 'sluice-epipe-'));
    try {
      writeFileSync(join(dir, 'in'), randomBytes(4 << 20));
      const key = join(dir, 'k');
      execFileSync('node', [bin, 'encrypt', join(dir, 'in'), join(dir, 'blob'), '--key-file', key]);
      const cmd = `node ${JSON.stringify(bin)} decrypt ${JSON.stringify(join(dir, 'blob'))} - --key-file ${JSON.stringify(key)} | head -c 1 > /dev/null; echo "\${PIPESTATUS[0]}"`;
      const r = spawnSync('bash', ['-c', cmd], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('141');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits 2 on an unknown command, a missing option or a wrong argument count', () => {
    expect(sluice('frobnicate').code).toBe(2);
    expect(sluice('encrypt', 'a', 'b').stderr).toContain('--key-file is required');
    expect(sluice('encrypt', 'a', 'b').code).toBe(2);
    expect(sluice('decrypt', 'only-one', '--key-file', 'k').code).toBe(2);
    expect(sluice('doctor', '--no-such-flag').code).toBe(2);
  });

  it('encrypts to a sealed blob that openssl opens, and decrypts it back', () => {
    const plain = join(dir, 'model.bin');
    writeFileSync(plain, randomBytes(100_003));
    const keyFile = join(dir, 'model.key');
    const blob = join(dir, 'model.sealed');
    const enc = sluice('encrypt', plain, blob, '--key-file', keyFile);
    expect(enc.code, enc.stderr).toBe(0);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const keyHex = readFileSync(keyFile, 'utf8').trim();
    expect(enc.stderr).not.toContain(keyHex);

    const blobBytes = readFileSync(blob);
    const ct = join(dir, 'model.ct');
    writeFileSync(ct, blobBytes.subarray(16));
    const viaOpenssl = execFileSync('openssl', [
      'enc',
      '-d',
      '-aes-256-cbc',
      '-K',
      keyHex,
      '-iv',
      blobBytes.subarray(0, 16).toString('hex'),
      '-in',
      ct,
    ]);
    expect(createHash('sha256').update(viaOpenssl).digest('hex')).toBe(sha(plain));

    const out = join(dir, 'model.out');
    const dec = sluice('decrypt', blob, out, '--key-file', keyFile);
    expect(dec.code, dec.stderr).toBe(0);
    expect(sha(out)).toBe(sha(plain));
  });

  it('refuses a tampered blob with ERR_BAD_DECRYPT, exit 1 and no output file', () => {
    // 32 plaintext bytes → a final block of pure padding (0x10 × 16); flipping the top bit of the
    // byte before it in the ciphertext turns the last padding byte into 0x90: invalid, always.
    const plain = join(dir, 'small.bin');
    writeFileSync(plain, Buffer.alloc(32, 7));
    const keyFile = join(dir, 'small.key');
    const blob = join(dir, 'small.sealed');
    expect(sluice('encrypt', plain, blob, '--key-file', keyFile).code).toBe(0);
    const bytes = readFileSync(blob);
    expect(bytes.length).toBe(16 + 48);
    bytes[16 + 32 - 1] = (bytes[16 + 32 - 1] as number) ^ 0x80;
    writeFileSync(blob, bytes);
    // Without the manifest encrypt wrote: the padding check is all there is.
    rmSync(`${blob}.manifest`);
    const out = join(dir, 'small.out');
    const r = sluice('decrypt', blob, out, '--key-file', keyFile);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ERR_BAD_DECRYPT');
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('encrypt writes OUT.manifest; decrypt checks it and says so', () => {
    const plain = join(dir, 'doc.bin');
    writeFileSync(plain, randomBytes(10_000));
    const keyFile = join(dir, 'doc.key');
    const blob = join(dir, 'doc.sealed');
    const enc = sluice('encrypt', plain, blob, '--key-file', keyFile);
    expect(enc.code, enc.stderr).toBe(0);
    expect(enc.stderr).toContain(`manifest ${blob}.manifest`);
    const manifest = JSON.parse(readFileSync(`${blob}.manifest`, 'utf8'));
    expect(manifest).toMatchObject({
      format: 'sluice-sealed-file-v1',
      plainSize: 10_000,
      blobSize: statSync(blob).size,
      blobSha256: sha(blob),
    });
    expect(JSON.stringify(manifest)).not.toContain(sha(plain));
    const dec = sluice('decrypt', blob, join(dir, 'doc.out'), '--key-file', keyFile);
    expect(dec.code, dec.stderr).toBe(0);
    expect(dec.stderr).toContain(`verified against ${blob}.manifest`);
    expect(sha(join(dir, 'doc.out'))).toBe(sha(plain));
    rmSync(`${blob}.manifest`);
    const bare = sluice('decrypt', blob, join(dir, 'doc.bare'), '--key-file', keyFile);
    expect(bare.code, bare.stderr).toBe(0);
    expect(bare.stderr).toContain(`not verified: no ${blob}.manifest`);
  });

  it('decrypt with a wrong key and a manifest: ERR_BAD_DECRYPT and no output, also for keys that pass the padding check', () => {
    const plain = join(dir, 'wk.bin');
    writeFileSync(plain, randomBytes(4000));
    const keyFile = join(dir, 'wk.key');
    const blob = join(dir, 'wk.sealed');
    expect(sluice('encrypt', plain, blob, '--key-file', keyFile).code).toBe(0);
    const bytes = readFileSync(blob);
    // Draw wrong keys until some pass the PKCS#7 check of the last block (about 1 in 256).
    const passing: Buffer[] = [];
    for (let tried = 0; passing.length < 2; tried++) {
      expect(tried).toBeLessThan(50_000);
      const k = randomBytes(32);
      const d = createDecipheriv('aes-256-cbc', k, bytes.subarray(-32, -16));
      try {
        d.update(bytes.subarray(-16));
        d.final();
        passing.push(k);
      } catch {}
    }
    for (const [i, k] of [...passing, randomBytes(32)].entries()) {
      const wrongKey = join(dir, `wrong-${i}.key`);
      writeFileSync(wrongKey, k.toString('hex'), { mode: 0o600 });
      const out = join(dir, `wk-${i}.out`);
      const r = sluice('decrypt', blob, out, '--key-file', wrongKey);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/wrong key for .*\(ERR_BAD_DECRYPT\)/);
      expect(existsSync(out)).toBe(false);
    }
    expect(readdirSync(dir).filter((f) => f.includes('.tmp') || f.startsWith('wk-'))).toEqual([]);
    // What the manifest prevents: without it, such a key "opens" the file, with garbage.
    rmSync(`${blob}.manifest`);
    const garbage = join(dir, 'wk.garbage');
    writeFileSync(join(dir, 'pass.key'), (passing[0] as Buffer).toString('hex'));
    expect(sluice('decrypt', blob, garbage, '--key-file', join(dir, 'pass.key')).code).toBe(0);
    expect(sha(garbage)).not.toBe(sha(plain));
  });

  it('decrypt refuses a sealed file that differs from its manifest with ERR_BAD_BLOB', () => {
    const plain = join(dir, 'dmg.bin');
    writeFileSync(plain, randomBytes(4000));
    const keyFile = join(dir, 'dmg.key');
    const blob = join(dir, 'dmg.sealed');
    expect(sluice('encrypt', plain, blob, '--key-file', keyFile).code).toBe(0);
    const bytes = readFileSync(blob);
    bytes[2000] = (bytes[2000] as number) ^ 1;
    writeFileSync(blob, bytes);
    const r = sluice('decrypt', blob, join(dir, 'dmg.out'), '--key-file', keyFile);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/damaged or replaced \(ERR_BAD_BLOB\)/);
    expect(existsSync(join(dir, 'dmg.out'))).toBe(false);
  });

  it('keys generate writes a 0600 PKCS#8 key once and prints its public key; show prints it again', () => {
    const conf = join(dir, 'keys-config');
    const env = { ...process.env, SLUICE_CONFIG_DIR: conf };
    const run = (...args: string[]) => {
      const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const gen = run('keys', 'generate');
    expect(gen.code, gen.stderr).toBe(0);
    const path = join(conf, 'publisher.key');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const pem = readFileSync(path, 'utf8');
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const publicKey = gen.stdout.trim();
    expect(publicKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    const pub = createPublicKey(createPrivateKey(pem)).export({ type: 'spki', format: 'der' });
    expect(pub.subarray(-32).toString('base64')).toBe(publicKey);
    expect(gen.stderr).not.toContain(pem.split('\n')[1]);
    const again = run('keys', 'generate');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('refusing to replace');
    expect(readFileSync(path, 'utf8')).toBe(pem);
    expect(run('keys', 'show').stdout.trim()).toBe(publicKey);
    const other = join(dir, 'other.key');
    expect(run('keys', 'generate', '--sign-key', other).code).toBe(0);
    const otherKey = run('keys', 'show', '--sign-key', other).stdout.trim();
    expect(otherKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(otherKey).not.toBe(publicKey);
    // The old name --key still works, saying once that it is deprecated; both names is a usage error.
    const old = run('keys', 'show', '--key', other);
    expect(old.stdout.trim()).toBe(otherKey);
    expect(old.stderr.trim()).toBe('warning: --key is deprecated; use --sign-key');
    expect(run('keys', 'show', '--key', other, '--sign-key', other).code).toBe(2);
    expect(run('keys', 'rotate').code).toBe(2);
  });

  it('rejects a key file that is not 64 hex characters without echoing it', () => {
    const keyFile = join(dir, 'bad.key');
    writeFileSync(keyFile, 'secret-not-hex');
    const r = sluice('decrypt', join(dir, 'x'), join(dir, 'y'), '--key-file', keyFile);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('64 hex characters');
    expect(r.stderr).not.toContain('secret-not-hex');
  });

  it('splits a blob into small + big + manifest, and concat restores it byte for byte', () => {
    const plain = join(dir, 'split.bin');
    writeFileSync(plain, randomBytes(3 * 1024 * 1024 + 5));
    const keyFile = join(dir, 'split.key');
    const blob = join(dir, 'split.sealed');
    expect(sluice('encrypt', plain, blob, '--key-file', keyFile).code).toBe(0);
    const parts = mkdtempSync(join(dir, 'parts-'));
    const r = sluice('split', blob, parts, '--small-kb', '64', '--chunk-size', '1MiB');
    expect(r.code, r.stderr).toBe(0);
    const manifest = JSON.parse(readFileSync(join(parts, 'split.sealed.manifest.json'), 'utf8'));
    expect(manifest.smallSize).toBe(64 * 1024);
    expect(manifest.smallSize + manifest.bigSize).toBe(statSync(blob).size);
    expect(manifest.chunks).toHaveLength(Math.ceil(manifest.bigSize / (1024 * 1024)));
    const joined = join(dir, 'joined.sealed');
    const c = sluice(
      'concat',
      join(parts, 'split.sealed.small'),
      join(parts, 'split.sealed.big'),
      joined,
    );
    expect(c.code, c.stderr).toBe(0);
    expect(sha(joined)).toBe(sha(blob));
    const piped = spawnSync(
      process.execPath,
      [bin, 'concat', join(parts, 'split.sealed.small'), join(parts, 'split.sealed.big'), '-'],
      { maxBuffer: 64 << 20 },
    );
    expect(piped.status, String(piped.stderr)).toBe(0);
    expect(createHash('sha256').update(piped.stdout).digest('hex')).toBe(sha(blob));
    expect(existsSync(join(process.cwd(), '-'))).toBe(false);
  });

  it('doctor reports the backend the environment asks for', () => {
    const r = sluice('doctor', '--json');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    const forced = process.env.SLUICE_BACKEND;
    if (forced === 'native' || forced === 'node') expect(report.backend).toBe(forced);
    expect(report.reason.length).toBeGreaterThan(0);
  });

  it('demo runs the embedded server end to end and says so', () => {
    const r = sluice('demo', '--size', '8MiB');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(/^demo: ok /);
    for (const step of [
      'generate',
      'server',
      'users',
      'push',
      'pull',
      'verify',
      'second device',
      'tampered CDN',
    ]) {
      expect(r.stdout).toMatch(new RegExp(`^${step} +\\d+ ms`, 'm'));
    }
    expect(r.stdout).toContain('ERR_DEVICE_NOT_BOUND');
    expect(r.stdout).toContain('ERR_CHUNK_DIGEST');
  });

  it('demo --json lists every step and leaves no work directory behind', () => {
    const r = sluice('demo', '--size', '1MiB', '--json', '--dir', dir);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.ok).toBe(true);
    expect(result.steps.map((s: { step: string }) => s.step)).toEqual([
      'generate',
      'server',
      'users',
      'push',
      'pull',
      'verify',
      'second device',
      'tampered CDN',
    ]);
    expect(existsSync(result.dir)).toBe(false);
  });

  it('serve refuses a bad trustProxy with ERR_INVALID_ARG, naming where it came from', () => {
    const data = join(dir, 'bad-trust-proxy');
    const flag = sluice('serve', '--data', data, '--port', '0', '--trust-proxy', '10.0.0.0/33');
    expect(flag.code).toBe(1);
    expect(flag.stderr).toContain("trustProxy entry 1 ('10.0.0.0/33') is not an IP address");
    expect(flag.stderr).toContain('(from --trust-proxy) (ERR_INVALID_ARG)');
    const file = join(dir, 'bad-trust-proxy.json');
    writeFileSync(file, JSON.stringify({ trustProxy: 3 }));
    const fromFile = sluice('serve', '--data', data, '--port', '0', '--config', file);
    expect(fromFile.code).toBe(1);
    expect(fromFile.stderr).toContain(`hop counts are not supported`);
    expect(fromFile.stderr).toContain(`(from --config ${file}) (ERR_INVALID_ARG)`);
  });

  it('usage errors of the server commands exit 2', () => {
    expect(sluice('pull', 'only-folder').code).toBe(2);
    expect(sluice('user', 'frobnicate', 'a@b.c').code).toBe(2);
    expect(sluice('user', 'create', 'a@b.c').stderr).toContain('--role is required');
    expect(sluice('serve', '--init-only').code).toBe(2);
    expect(sluice('serve', '--port', 'eighty').code).toBe(2);
    expect(sluice('demo', '--size', 'huge').code).toBe(2);
  });
});
