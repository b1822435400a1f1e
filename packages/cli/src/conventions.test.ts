// The conventions of the command line, through the built binary: version, help, did-you-mean,
// one-line usage errors, -q/-v, sizes, completion scripts.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bin, run } from './test-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-conventions-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const version = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/** The lines written to a stream, without the final newline's empty one. */
const lines = (text: string) => text.split('\n').filter((l) => l !== '');

describe('version and help', () => {
  it('--version and version print `sluice <version of @sluice/cli>` and exit 0', async () => {
    for (const args of [['--version'], ['version']]) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout).toBe(`sluice ${version}\n`);
      expect(r.stderr).toBe('');
    }
    const verbose = await run(['version', '-v']);
    expect(verbose.code).toBe(0);
    expect(lines(verbose.stdout)[0]).toBe(`sluice ${version}`);
    expect(verbose.stdout).toContain(`node ${process.versions.node}`);
    expect(verbose.stdout).toMatch(/crypto backend (native|node) \(/);
  });

  it('help CMD and CMD --help print that command’s help; help alone the top-level one', async () => {
    const [help, flag, top, topFlag] = await Promise.all([
      run(['help', 'pull']),
      run(['pull', '--help']),
      run(['help']),
      run(['--help']),
    ]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: sluice pull FOLDER NAME/);
    expect(help.stdout).toContain('-o, --output PATH');
    expect(help.stdout).toBe(flag.stdout);
    expect(top.code).toBe(0);
    expect(top.stdout).toBe(topFlag.stdout);
    expect(top.stdout).toMatch(/^usage: sluice /);
    for (const word of ['completion', 'version', '--quiet', '--verbose', '--no-progress', '130']) {
      expect(top.stdout).toContain(word);
    }
  });

  it('help of an unknown command is a one-line usage error, with a suggestion when one is close', async () => {
    const [far, near] = await Promise.all([run(['help', 'xyz']), run(['help', 'pul'])]);
    expect(far.code).toBe(2);
    expect(far.stdout).toBe('');
    expect(far.stderr).toBe("sluice help: unknown command 'xyz' (see 'sluice --help')\n");
    expect(near.code).toBe(2);
    expect(near.stderr).toBe("sluice help: unknown command 'pul'; did you mean 'pull'?\n");
  });
});

describe('usage errors', () => {
  it('an unknown command or flag gets one line with the closest name, exit 2', async () => {
    const cases: [string[], string][] = [
      [['pul'], "sluice: unknown command 'pul'; did you mean 'pull'?"],
      [['pusj', 'f', 'x'], "sluice: unknown command 'pusj'; did you mean 'push'?"],
      [['frobnicate'], "sluice: unknown command 'frobnicate' (see 'sluice --help')"],
      [
        ['pull', 'models', 'a.bin', '--outptu', 'x'],
        "sluice pull: unknown option '--outptu'; did you mean '--output'?",
      ],
      [
        ['cache', 'ls', '--cahce', 'x'],
        "sluice cache: unknown option '--cahce'; did you mean '--cache'?",
      ],
      [['ls', 'models', '--frob'], "sluice ls: unknown option '--frob' (see 'sluice ls --help')"],
      [['--quite', 'ls'], "sluice: unknown option '--quite'; did you mean '--quiet'?"],
      [
        ['decrypt', 'only-one', '--key-file', 'k'],
        "sluice decrypt: expected 2 argument(s), got 1 (see 'sluice decrypt --help')",
      ],
    ];
    const results = await Promise.all(cases.map(([args]) => run(args)));
    results.forEach((r, i) => {
      const [args, line] = cases[i] as [string[], string];
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toBe(`${line}\n`);
      expect(r.stdout).toBe('');
    });
  });
});

describe('-q and -v', () => {
  it('-q leaves only errors on stderr, before or after the command; results still happen', async () => {
    writeFileSync(join(dir, 'plain.bin'), 'some bytes');
    const args = ['encrypt', join(dir, 'plain.bin'), join(dir, 'q.sealed')];
    const noisy = await run([...args, '--key-file', join(dir, 'noisy.key')]);
    expect(noisy.code).toBe(0);
    expect(noisy.stderr).toContain('sealed ');
    for (const [i, form] of [
      ['-q', ...args, '--key-file', join(dir, 'q1.key')],
      [...args, '--quiet', '--key-file', join(dir, 'q2.key')],
    ].entries()) {
      const r = await run(form);
      expect(r.code, form.join(' ')).toBe(0);
      expect(r.stderr, form.join(' ')).toBe('');
      expect(existsSync(join(dir, `q${i + 1}.key`))).toBe(true);
    }
    const failed = await run([
      '-q',
      'decrypt',
      join(dir, 'nothing'),
      join(dir, 'out'),
      '--key-file',
      join(dir, 'q1.key'),
    ]);
    expect(failed.code).toBe(1);
    expect(lines(failed.stderr)).toHaveLength(1);
    expect(failed.stderr).toMatch(/^sluice: /);
    const usage = await run(['-q', 'pul']);
    expect(usage.stderr).toBe("sluice: unknown command 'pul'; did you mean 'pull'?\n");
  });

  it('-v adds detail lines: how long the command took', async () => {
    const args = [
      'encrypt',
      join(dir, 'plain.bin'),
      join(dir, 'v.sealed'),
      '--key-file',
      join(dir, 'v.key'),
    ];
    const [plain, verbose] = [await run(args), await run(['-v', ...args])];
    expect(plain.stderr).not.toMatch(/exit 0 after/);
    expect(verbose.code).toBe(0);
    expect(lines(verbose.stderr).at(-1)).toMatch(/^sluice encrypt: exit 0 after \d+ ms$/);
  });
});

describe('sizes', () => {
  it('take decimals and SI or IEC units; nonsense is a usage error that says what a size is', async () => {
    const cache = join(dir, 'no-cache');
    const ok = await run(['cache', 'prune', '--cache', cache, '--cache-max', '1.5GiB', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    for (const bad of ['1.2.3GB', '-1', 'GB', '1e9', '12 parsecs']) {
      const r = await run(['cache', 'prune', '--cache', cache, `--cache-max=${bad}`]);
      expect(r.code, bad).toBe(2);
      expect(lines(r.stderr), bad).toHaveLength(1);
      expect(r.stderr).toContain(`bad size '${bad}': a number and an optional unit, such as 500M`);
    }
  });
});

describe('completion', () => {
  /** What the bash completion function offers for the words typed so far. */
  function offered(script: string, words: string[]): string[] {
    const typed = words.map((w) => `'${w}'`).join(' ');
    const out = execFileSync(
      'bash',
      [
        '-c',
        `source "$1"; COMP_WORDS=(${typed}); COMP_CWORD=${words.length - 1}; _sluice; printf '%s\\n' "\${COMPREPLY[@]}"`,
        'bash',
        script,
      ],
      { encoding: 'utf8' },
    );
    return lines(out);
  }

  it('bash: commands, flags and actions from the declarations', async () => {
    const r = await run(['completion', 'bash']);
    expect(r.code).toBe(0);
    const script = join(dir, 'sluice.bash');
    writeFileSync(script, r.stdout);
    expect(offered(script, ['sluice', 'pu'])).toEqual(['push', 'pull']);
    expect(offered(script, ['sluice', '-q', 'pul'])).toEqual(['pull']);
    expect(offered(script, ['sluice', 'pull', '--ou'])).toEqual(['--output']);
    expect(offered(script, ['sluice', 'pull', '--no-'])).toEqual(['--no-progress']);
    expect(offered(script, ['sluice', 'cache', ''])).toEqual(['ls', 'verify', 'prune']);
    expect(offered(script, ['sluice', 'cache', 'ls', '--'])).toContain('--cache');
    // The deprecated names are not offered; a flag's value is left to file completion.
    expect(offered(script, ['sluice', 'cache', 'ls', '--d'])).toEqual([]);
    expect(offered(script, ['sluice', 'pull', '-o', ''])).toEqual([]);
    expect(offered(script, ['sluice', 'completion', ''])).toEqual(['bash', 'zsh']);
  });

  const zsh = spawnSync('zsh', ['--version']).status === 0;
  it.skipIf(!zsh)(
    'zsh: a script zsh parses; in an interactive zsh Tab offers commands, flags, actions',
    async () => {
      const r = await run(['completion', 'zsh']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^#compdef sluice\n/);
      const script = join(dir, '_sluice');
      writeFileSync(script, r.stdout);
      execFileSync('zsh', ['-n', script]);
      // Typed into an interactive zsh (on a zpty) with completion on: each Tab offers the
      // command, flag or action; a pattern never seen leaves zpty waiting until the timeout.
      const driver = join(dir, 'drive.zsh');
      writeFileSync(
        driver,
        [
          'zmodload zsh/zpty',
          'zpty z zsh -f -i',
          `zpty -w z "PS1='%% '; autoload -Uz compinit; compinit -u -D; source \${(q)1}"`,
          ...(
            [
              ['sluice pu', '*pull  -- Download*push  -- Seal*'],
              ['sluice -q pu', '*pull  -- Download*push  -- Seal*'],
              ['sluice pull --ou', '*--output*'],
              ['sluice cache ', '*ls*prune*verify*'],
            ] as const
          ).flatMap(([typed, seen], i) => [
            `zpty -w -n z $'\\C-u${typed}\\t'`,
            `zpty -r z out '${seen}' && print -r -- 'offered ${i}'`,
          ]),
          'zpty -d z',
        ].join('\n'),
      );
      const offered = execFileSync('zsh', ['-f', driver, script], {
        encoding: 'utf8',
        timeout: 20_000,
      });
      expect(lines(offered)).toEqual(['offered 0', 'offered 1', 'offered 2', 'offered 3']);
      for (const name of ['pull', 'push', 'cache', 'completion'])
        expect(r.stdout).toContain(`'${name}:`);
      expect(r.stdout).toContain(
        "'(--output -o)'{--output,-o}'[where the plaintext goes]:PATH:_files'",
      );
    },
  );

  it('an unknown shell is a usage error', async () => {
    const r = await run(['completion', 'fish']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("no completion for 'fish' (bash or zsh)");
  });
});

it('the binary under test is the built one', () => {
  expect(existsSync(join(bin, '../../dist/main.js')), 'run `pnpm build` first').toBe(true);
});
