import { readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { SluiceError, writeFileAtomic } from '@sluice/core';

/** What `sluice login` remembers besides the tokens (which Session keeps in `auth.json`). */
export interface CliConfig {
  server: string;
  email: string;
}

const CONFIG_FILE = 'config.json';
const AUTH_FILE = 'auth.json';
const PUBLISHER_KEY_FILE = 'publisher.key';

/** `$SLUICE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/sluice`, else `~/.config/sluice`. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SLUICE_CONFIG_DIR) return env.SLUICE_CONFIG_DIR;
  if (env.XDG_CONFIG_HOME) return join(env.XDG_CONFIG_HOME, 'sluice');
  return join(homedir(), '.config', 'sluice');
}

/** The file Session's `saveAuth` keeps the tokens in (0600). */
export function authPath(): string {
  return join(configDir(), AUTH_FILE);
}

/** Where `sluice keys generate` writes the publisher key and `push` looks for it by default. */
export function publisherKeyPath(): string {
  return join(configDir(), PUBLISHER_KEY_FILE);
}

/** The stored server and email, or undefined before the first login. */
export function readConfig(): CliConfig | undefined {
  const path = join(configDir(), CONFIG_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SluiceError('ERR_IO', `cannot read ${path}`, { cause: e, path });
  }
  try {
    const parsed = JSON.parse(text) as Partial<CliConfig>;
    if (typeof parsed.server === 'string' && typeof parsed.email === 'string') {
      return { server: parsed.server, email: parsed.email };
    }
  } catch {
    // Fall through: a broken file is treated as no login; the next login rewrites it.
  }
  return undefined;
}

/** Replaces the stored server and email atomically (0600): a crash leaves the old file or the new. */
export async function writeConfig(config: CliConfig): Promise<void> {
  const dir = configDir();
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(join(dir, CONFIG_FILE), `${JSON.stringify(config)}\n`, { mode: 0o600 });
}

export async function removeConfig(): Promise<void> {
  await rm(join(configDir(), CONFIG_FILE), { force: true });
}
