import { describe, expect, it } from 'vitest';
import { EXIT, type Terminal } from './command.js';
import { commands, main } from './main.js';

function capture(): Terminal & { text: () => string } {
  const lines: string[] = [];
  return {
    out: (l) => lines.push(l),
    err: (l) => lines.push(l),
    isTty: false,
    text: () => lines.join('\n'),
  };
}

describe('command help', () => {
  it('lists every declared flag of each command, and declares every flag its usage names', async () => {
    for (const c of commands) {
      const io = capture();
      expect(await main([c.name, '--help'], io), c.name).toBe(EXIT.ok);
      const help = io.text();
      for (const [name, flag] of Object.entries(c.flags ?? {})) {
        // A deprecated old name works but is not shown.
        if (flag.replacedBy === undefined) expect(help, c.name).toContain(`--${name}`);
        else expect(help, c.name).not.toContain(`--${name} `);
      }
      expect(help).toContain('-h, --help');
      for (const [, used] of c.usage.matchAll(/--([a-z0-9-]+)/g)) {
        expect(Object.keys(c.flags ?? {}), `${c.name} --${used}`).toContain(used);
      }
    }
  });

  it('a flag the command does not declare is a one-line usage error pointing to the help', async () => {
    const io = capture();
    expect(await main(['ls', '--dir', 'x', 'models'], io)).toBe(EXIT.usage);
    expect(io.text()).toBe("sluice ls: unknown option '--dir' (see 'sluice ls --help')");
  });
});
