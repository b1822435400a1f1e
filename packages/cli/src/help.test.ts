import { describe, expect, it } from 'vitest';
import { EXIT, type Io } from './command.js';
import { commands, main } from './main.js';

function capture(): Io & { text: () => string } {
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
      for (const name of Object.keys(c.flags ?? {})) expect(help, c.name).toContain(`--${name}`);
      expect(help).toContain('-h, --help');
      for (const [, used] of c.usage.matchAll(/--([a-z0-9-]+)/g)) {
        expect(Object.keys(c.flags ?? {}), `${c.name} --${used}`).toContain(used);
      }
    }
  });

  it('a flag the command does not declare is a usage error, with the help', async () => {
    const io = capture();
    expect(await main(['ls', '--dir', 'x', 'models'], io)).toBe(EXIT.usage);
    expect(io.text()).toContain("Unknown option '--dir'");
    expect(io.text()).toContain('usage: sluice ls FOLDER [--json]');
  });
});
