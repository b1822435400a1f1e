import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configDir } from './config.js';

describe('configDir', () => {
  it('is $SLUICE_CONFIG_DIR, else $XDG_CONFIG_HOME/sluice, else ~/.config/sluice', () => {
    expect(configDir({ SLUICE_CONFIG_DIR: '/a', XDG_CONFIG_HOME: '/b' })).toBe('/a');
    expect(configDir({ XDG_CONFIG_HOME: '/b' })).toBe(join('/b', 'sluice'));
    expect(configDir({ SLUICE_CONFIG_DIR: '', XDG_CONFIG_HOME: '' })).toBe(
      join(homedir(), '.config', 'sluice'),
    );
  });
});
